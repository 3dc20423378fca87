"""Real-model regime on stand-ins of three architectures (`tests/standins.py`): `kidsql bench` end to end on a
Spider folder as it ships, with --lora, for SFT and KID with default options; and each rule a real pair needs
(mask token without BOS, positions, gold columns kept, EOS mismatch, TrainingArguments pass-through, export)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import standins
from kidsql.cli import main
from kidsql.errors import KidsqlError


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The Spider folder and the three stand-in pairs, built once, with a private kidsql cache."""
    root = tmp_path_factory.mktemp("real")
    mp = pytest.MonkeyPatch()
    mp.setenv("KIDSQL_CACHE", str(root / "cache"))
    data = standins.write_spider_folder(root / "spider")
    pairs = {name: build(root) for name, build in standins.PAIRS.items()}
    yield root, data, pairs
    mp.undo()


def _distill(root: Path, data: Path, pair: tuple[Path, Path], name: str, **options):
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import run_distill

    values = dict(method="kid", teacher=str(pair[0]), student=str(pair[1]), data=str(data),
                  output_dir=str(root / name), max_steps=2, per_device_train_batch_size=2, logging_steps=1,
                  max_sql_tokens=64, gen_max_new_tokens=8, learning_rate=1e-2)
    values.update(options)
    return run_distill(load_config(None, **values))


# ------------------------------------------------------------------------------------------ bench, end to end


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["qwen2", "llama", "gpt2"])
def test_bench_end_to_end_with_lora(world, arch):
    root, data, pairs = world
    teacher, student = pairs[arch]
    out = root / f"bench-{arch}"
    # 1,024 prompt tokens: more than the GPT-2 stand-in's 256 positions hold, so its budget must be lowered
    rc = main(["bench", "--data", str(data), "--teacher", str(teacher), "--student", str(student),
               "--teacher_steps", "0", "--lora", "--lora_r", "4", "--methods", "sft,kid", "--seeds", "1",
               "--student_steps", "2", "--eval_limit", "2", "--out", str(out), "--batch_size", "2",
               "--isolate_runs", "false", "--curve_every", "0", "--max_new_tokens", "4", "--eval_workers", "1",
               "--max_prompt_tokens", "1024", "--max_sql_tokens", "64"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["splits"] == ["dev"]  # the splits the folder has, train_spider/train_others excluded
    assert report["split_sizes"] == {"dev": 2}
    runs = {r["variant"]: r for r in report["runs"]}
    assert set(runs) == {"sft", "kid"} and all(r["steps"] == 2 for r in runs.values())
    resolved = runs["kid"]["resolved"]
    expected = {"qwen2": "pad '<|endoftext|>'", "llama": "bos '<s>'", "gpt2": "bos '<|endoftext|>'"}[arch]
    assert resolved["kid_mask_token"].startswith(expected)
    assert resolved["prompts"]["total"] == len(standins.TRAIN_SPIDER) + len(standins.TRAIN_OTHERS)
    if arch == "gpt2":  # 256 positions - (64 SQL + EOS) = 191 prompt tokens, and the wide schema is cut to them
        assert resolved["max_prompt_tokens"] == {"asked": 1024, "used": 191, "max_positions": 256}
        assert resolved["prompts"]["shortened"] >= 2
    else:
        assert "max_prompt_tokens" not in resolved
    adapter = json.loads((Path(runs["kid"]["model_dir"]) / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter["r"] == 4
    assert "Examples scored per split: dev 2." in (out / "report.md").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------------------------- data layouts


def test_spider_train_is_both_files_and_bird_subfolders_load(tmp_path):
    from kidsql.data.load import evaluation_splits, load_benchmark

    data = standins.write_spider_folder(tmp_path / "spider")
    train = load_benchmark(data, "train")
    assert [e.question for e in train.examples] == [q for _, q, _ in standins.TRAIN_SPIDER + standins.TRAIN_OTHERS]
    assert evaluation_splits(data) == ["dev"]
    # BIRD as shipped: root/train/{train.json,train_tables.json,train_databases/}, root/dev/...
    bird = tmp_path / "bird"
    for split in ("train", "dev"):
        folder = bird / split
        (folder / f"{split}_databases").mkdir(parents=True)
        (data / "database" / "concerts").rename(folder / f"{split}_databases" / "concerts") if split == "train" else \
            __import__("shutil").copytree(folder.parent / "train" / "train_databases" / "concerts",
                                          folder / f"{split}_databases" / "concerts")
        rows = [{"db_id": "concerts", "question": "how many singers ?", "evidence": "singer means a person",
                 "SQL": "SELECT count(*) FROM singer", "question_id": 0}]
        (folder / f"{split}.json").write_text(json.dumps(rows), encoding="utf-8")
    assert evaluation_splits(bird) == ["dev"]
    dev = load_benchmark(bird, "dev")
    assert dev.db_dir == bird / "dev" / "dev_databases" and dev.examples[0].evidence == "singer means a person"
    assert load_benchmark(bird, "dev", use_evidence=False).examples[0].evidence == ""


# ----------------------------------------------------------------------------------------------- mask token


def test_kid_mask_token_falls_back_without_bos(world):
    from transformers import AutoTokenizer

    from kidsql.distill.trainer import resolve_mask_token

    _, _, pairs = world
    qwen = AutoTokenizer.from_pretrained(str(pairs["qwen2"][1]))
    assert qwen.bos_token is None
    tid, what = resolve_mask_token(qwen, "bos")
    assert tid == qwen.pad_token_id == qwen.eos_token_id and what.startswith("pad")
    qwen.pad_token = None  # no BOS, no pad: eos is next
    assert resolve_mask_token(qwen, "bos")[0] == qwen.eos_token_id
    llama = AutoTokenizer.from_pretrained(str(pairs["llama"][1]))
    assert resolve_mask_token(llama, "bos")[0] == llama.bos_token_id
    n = len(qwen)
    with pytest.raises(KidsqlError, match="no such token"):
        resolve_mask_token(qwen, "<mask-that-is-not-there>")
    assert len(qwen) == n  # never a new token


def test_eos_mismatch_is_an_error_before_compute(world):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kidsql.models import check_vocab_compatible

    _, _, pairs = world
    teacher, student = pairs["qwen2"]
    t_tok, s_tok = AutoTokenizer.from_pretrained(str(teacher)), AutoTokenizer.from_pretrained(str(student))
    t_model, s_model = AutoModelForCausalLM.from_pretrained(str(teacher)), AutoModelForCausalLM.from_pretrained(str(student))
    check_vocab_compatible(t_model, s_model, t_tok, s_tok)
    t_tok.eos_token = "SELECT"  # same vocabulary, another EOS (an instruct teacher's <|im_end|> vs <|endoftext|>)
    with pytest.raises(KidsqlError, match="teacher EOS 'SELECT'"):
        check_vocab_compatible(t_model, s_model, t_tok, s_tok)


# ---------------------------------------------------------------------------------------------------- lengths


def test_positions_checked_before_compute(world):
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import fit_lengths
    from kidsql.models import load_model, load_tokenizer

    _, _, pairs = world
    model = load_model(str(pairs["gpt2"][1]), load_tokenizer(str(pairs["gpt2"][1])))
    resolved: dict = {}
    cfg = load_config(None, max_prompt_tokens=1024, max_sql_tokens=64, gen_max_new_tokens=100)
    with pytest.warns(UserWarning, match="lowered to 156"):
        fitted = fit_lengths(cfg, [model], resolved)
    assert fitted.max_prompt_tokens == 256 - 100 and resolved["max_prompt_tokens"]["used"] == 156
    with pytest.raises(KidsqlError, match="lower them"):
        fit_lengths(load_config(None, max_sql_tokens=250), [model], {})


def test_prompt_plus_sql_fits_gpt2_and_gold_columns_are_kept(world):
    from kidsql.distill.batches import encode_examples
    from kidsql.distill.config import load_config
    from kidsql.models import load_tokenizer
    from kidsql.data.load import load_benchmark
    from kidsql.prompts import PromptStats, gold_items
    from kidsql.distill.trainer import training_prompts

    _, data, pairs = world
    tok = load_tokenizer(str(pairs["gpt2"][1]))
    cfg = load_config(None, data=str(data), max_prompt_tokens=120, num_sample_values=0)
    bench = load_benchmark(data, "train")
    kept_stats, plain_stats = PromptStats(), PromptStats()
    kept, _ = training_prompts(cfg, tok, keep_gold=True, stats=kept_stats)
    plain, _ = training_prompts(cfg, tok, stats=plain_stats)

    def columns_in(prompt: str) -> set[tuple[str, str]]:
        return {(t.lower(), c.lower()) for t, c in re.findall(r"(\w+)\.(\w+) \(", prompt)}

    missing_kept = missing_plain = 0
    for ex, p_kept, p_plain in zip(bench.examples, kept, plain):
        gold = gold_items(ex.sql, bench.schemas[ex.db_id])
        assert gold  # every gold query names a table of its schema
        missing_kept += len(gold - columns_in(p_kept))
        missing_plain += len(gold - columns_in(p_plain))
    assert missing_kept == 0
    assert missing_plain > 0  # the plain budget does drop gold columns here, so the protection is what keeps them
    assert kept_stats.shortened == plain_stats.shortened >= 2 and kept_stats.total == 6
    features = encode_examples(tok, kept, [e.sql for e in bench.examples], max_prompt_tokens=191, max_sql_tokens=64)
    assert max(len(f["input_ids"]) for f in features) <= 256


def test_gold_items_reads_the_tables_and_columns_a_query_uses():
    from kidsql.data.types import Column, Schema, Table
    from kidsql.prompts import gold_items

    schema = Schema("d", [Table("singer", [Column("singer", "singer_id"), Column("singer", "name"),
                                           Column("singer", "age")]),
                          Table("concert", [Column("concert", "concert_id"), Column("concert", "year")]),
                          Table("stadium", [Column("stadium", "name")])])
    assert gold_items("SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T2.year = 2020", schema) == {
        ("singer", "name"), ("concert", "year")}
    assert gold_items("SELECT count(*) FROM concert", schema) == {("concert", "concert_id")}
    assert gold_items('SELECT "age" FROM `singer`', schema) == {("singer", "age")}


# ------------------------------------------------------------------------------------- options and the outputs


def test_every_training_argument_is_a_config_field(tmp_path, capsys):
    from transformers import TrainingArguments

    from kidsql.cli import build_parser
    from kidsql.distill.config import DistillConfig, given_options, load_config

    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("optim: adafactor\ngradient_checkpointing: true\nlearning_rate: 0.001\n", encoding="utf-8")
    args = build_parser("distill").parse_args(["distill", "--config", str(yaml_file), "--torch_empty_cache_steps", "7",
                                      "--output_dir", str(tmp_path / "o")])
    cfg = load_config(args.config, **given_options(args))
    assert isinstance(cfg, TrainingArguments) and cfg.learning_rate == 0.001
    assert (cfg.optim, cfg.gradient_checkpointing, cfg.torch_empty_cache_steps) == ("adafactor", True, 7)
    assert cfg.gradient_checkpointing_kwargs == {"use_reentrant": False}  # works with frozen (LoRA) embeddings
    assert cfg.report_to == [] and cfg.remove_unused_columns is False and cfg.data_seed == cfg.seed
    assert load_config(None, seed=4, data_seed=9).data_seed == 9
    assert load_config(None, save_final=False).save_strategy == "no"
    assert load_config(None, bf16="false").bf16 is False and load_config(None, bf16=True).bf16 is True
    with pytest.raises(KidsqlError, match="--bf16 'maybe'"):
        load_config(None, bf16="maybe")
    with pytest.raises(KidsqlError, match="unknown option"):
        load_config(None, not_an_option=1)
    with pytest.raises(KidsqlError, match="invalid training options"):
        load_config(None, optim="no-such-optimizer")
    # --help: kidsql's own options first, then every other TrainingArguments field
    capsys.readouterr()
    with pytest.raises(SystemExit):
        build_parser("distill").parse_args(["distill", "--help"])
    text = capsys.readouterr().out
    usage_and_own, others = text.split("other transformers.TrainingArguments fields:")
    assert "--kid_alpha KID_ALPHA" in usage_and_own and "--optim {" in others and "--kid_alpha" not in others
    # --resume is an alias of resume_from_checkpoint (kidsql's reading: auto or a checkpoint folder)
    old = build_parser("distill").parse_args(["distill", "--resume", "auto"])
    assert given_options(old)["resume_from_checkpoint"] == "auto"
    own = {f.name for f in dataclasses.fields(DistillConfig)}
    assert {f.name for f in dataclasses.fields(TrainingArguments)} <= own


def test_lora_run_with_checkpointing_tensorboard_exec_eval_then_export(world, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    from kidsql.models import load_model

    root, data, pairs = world
    res = _distill(root, data, pairs["llama"], "llama-kid", lora=True, lora_r=4, gradient_checkpointing=True,
                   report_to="none" if not _has_tensorboard() else "tensorboard", exec_eval_split="dev",
                   exec_eval_steps=1, exec_eval_limit=2, student_dtype="float32", teacher_dtype="float32",
                   attn_implementation="eager")
    printed = capsys.readouterr().out
    assert re.search(r"student [\d,]+ parameters \([\d,]+ trainable\), float32 on cpu; teacher .*world size 1", printed)
    assert "KID mask token: bos '<s>'" in printed
    points = [h for h in res.log_history if "exec_ex" in h]
    assert len(points) == 2 and all(0.0 <= p["exec_ex"] <= 100.0 for p in points)
    assert all(h.get("loss") == h.get("loss") for h in res.log_history if "loss" in h)  # finite, not NaN
    if _has_tensorboard():
        assert list((root / "llama-kid" / "runs").rglob("events.out.tfevents.*"))
    from safetensors.torch import load_file

    weights = load_file(str(res.model_dir / "adapter_model.safetensors"))
    lora_b = [w for k, w in weights.items() if "lora_B" in k]
    assert lora_b and any(w.abs().sum() > 0 for w in lora_b)  # B starts at zero: gradients flowed through checkpointing
    # export: a standalone folder AutoModelForCausalLM loads alone, with the same logits as base + adapter
    out = root / "llama-kid-merged"
    assert main(["export", "--model", str(res.model_dir), "--out", str(out), "--merge-lora"]) == 0
    assert not (out / "adapter_config.json").exists() and (out / "prompt_options.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    adapted = load_model(str(res.model_dir), dtype="float32").eval()
    ids = torch.tensor([[1, 5, 9, 40, 77, 3]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-5)
    assert main(["export", "--model", str(res.model_dir), "--out", str(out), "--merge-lora"]) == 2  # no overwrite


def test_no_save_final_writes_no_checkpoint(world):
    root, data, pairs = world
    res = _distill(root, data, pairs["gpt2"], "gpt2-nosave", save_final=False, save_steps=1, max_prompt_tokens=1024)
    assert res.model_dir is None and res.steps == 2
    assert not list((root / "gpt2-nosave").glob("checkpoint-*")) and not (root / "gpt2-nosave" / "final").exists()
    run = json.loads((root / "gpt2-nosave" / "run_config.json").read_text(encoding="utf-8"))
    assert run["resolved"]["max_prompt_tokens"]["used"] == 256 - 65
    assert run["config"]["max_prompt_tokens"] == 256 - 65 and run["config"]["save_strategy"] == "no"


def _has_tensorboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def test_job_options_reach_every_run_and_bad_ones_stop_before_training(tmp_path):
    from kidsql.experiments import steps
    from kidsql.experiments.config import student_budget
    from kidsql.experiments.bench import BenchConfig, splits_of

    data = standins.write_spider_folder(tmp_path / "spider")
    cfg = BenchConfig(data=str(data), student="Qwen/Qwen2-0.5B", lora=True, lora_r=8, use_evidence=False,
                      train_options="gradient_checkpointing=true,teacher_dtype=bfloat16,optim=adafactor")
    run = steps.distill_config(data, "kid", cfg.student, tmp_path / "o", student_budget(cfg),
                           overrides=cfg.run_overrides())
    assert (run.lora, run.lora_r, run.use_evidence, run.teacher_dtype, run.tokenizer) == (
        True, 8, False, "bfloat16", "Qwen/Qwen2-0.5B")
    assert (run.gradient_checkpointing, run.optim) == (True, "adafactor")
    assert splits_of(cfg, data) == ["dev"]
    with pytest.raises(KidsqlError, match="unknown field.*nope"):
        BenchConfig(train_options="nope=1").check()
    (data / "train_spider.json").unlink()
    (data / "train_others.json").unlink()
    with pytest.raises(KidsqlError, match="--train_split"):
        steps.resolve_benchmark(cfg)
    assert steps.resolve_benchmark(BenchConfig(data=str(data), train_split="dev")) == data
