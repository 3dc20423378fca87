"""The trainer's loss against brute force, KID's MLE variants, resume = uninterrupted, config precedence, CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from kidsql.distill.methods import get_method
from kidsql.errors import KidsqlError

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import build_tokenizer, load_bench_tokenizer, tiny_llama, write_benchmark, write_model_config  # noqa: E402


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("trainer") / "bench")


def _trainer(bench: Path, tmp_path: Path, method):  # noqa: ANN001, ANN202
    """A DistillTrainer on two different random micro Llamas (teacher seed 1, student seed 2)."""
    from kidsql.distill.batches import SqlCollator, encode_examples
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import DistillTrainer, training_prompts, mask_token_id

    tok = load_bench_tokenizer(bench)
    config = load_config(None, method=method.name, student="x", data=str(bench), output_dir=str(tmp_path / "out"))
    prompts, sqls = training_prompts(config, tok)
    return DistillTrainer(
        model=tiny_llama(tok, seed=2), args=config, train_dataset=encode_examples(tok, prompts, sqls),
        data_collator=SqlCollator(tok.pad_token_id), processing_class=tok, method=method,
        teacher=tiny_llama(tok, seed=1) if method.needs_teacher else None, mask_token_id=mask_token_id(tok, "bos"),
    )


def _logp(x: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(x.double(), -1)


def _rkl_mean(student_logits, teacher_logits, rows) -> float:  # noqa: ANN001
    """Mean over explicit (row, position) pairs of KL(q || p), float64, one position at a time."""
    total = 0.0
    for b, t in rows:
        q, p = _logp(student_logits[b, t]), _logp(teacher_logits[b, t])
        total += float((q.exp() * (q - p)).sum())
    return total / len(rows)


def _ce_mean(student_logits, ids, rows) -> float:  # noqa: ANN001
    """Mean over (row, position t) of -log q(token t + 1)."""
    return sum(-float(_logp(student_logits[b, t])[ids[b, t + 1]]) for b, t in rows) / len(rows)


def _sql_positions(mask: torch.Tensor) -> list[tuple[int, int]]:
    """(row, logit position t) for every token t + 1 selected by `mask`."""
    return [(b, t - 1) for b, t in mask.nonzero().tolist()]


def test_rkd_loss_is_a_per_token_mean_over_the_batch(bench, tmp_path) -> None:
    trainer = _trainer(bench, tmp_path, get_method("rkd"))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in (0, 6, 7)])  # SQL lengths differ
    lengths = batch["sql_mask"].sum(1).tolist()
    assert len(set(lengths)) > 1
    loss = float(trainer.compute_loss(trainer.model, batch).detach())
    with torch.no_grad():
        s = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        t = trainer.teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    rows = _sql_positions(batch["sql_mask"])
    assert loss == pytest.approx(_rkl_mean(s, t, rows) + _ce_mean(s, batch["input_ids"], rows), rel=1e-5)


@pytest.mark.parametrize("mle_on, kl_positions", [("imperfect", "all"), ("clean", "all"), ("imperfect", "rewritten")])
def test_kid_loss_matches_its_definition(bench, tmp_path, mle_on: str, kl_positions: str) -> None:
    from _kid import kid_rewrite

    method = get_method("kid", kid_strategy="uniform", kid_alpha=0.3, kid_mle_on=mle_on, kid_kl_positions=kl_positions)
    trainer = _trainer(bench, tmp_path, method)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in (1, 2, 6)])
    ids, attn, sql = batch["input_ids"], batch["attention_mask"], batch["sql_mask"]
    loss = float(trainer.compute_loss(trainer.model, batch).detach())
    y_hat, chosen = kid_rewrite(trainer.model, ids, sql, alpha=0.3, strategy="uniform",
                                        mask_token_id=trainer.sources.mask_token_id, attention_mask=attn,
                                        eos_token_id=trainer.sources.eos_token_id)
    assert chosen.any() and not torch.equal(y_hat, ids)
    with torch.no_grad():
        s_hat = trainer.model(input_ids=y_hat, attention_mask=attn).logits
        t_hat = trainer.teacher(input_ids=y_hat, attention_mask=attn).logits
        s_gold = trainer.model(input_ids=ids, attention_mask=attn).logits
    kl_rows = _sql_positions(sql if kl_positions == "all" else chosen)
    ce_logits = s_gold if mle_on == "clean" else s_hat  # the targets are the gold tokens either way
    expected = _rkl_mean(s_hat, t_hat, kl_rows) + _ce_mean(ce_logits, ids, _sql_positions(sql))
    assert loss == pytest.approx(expected, rel=1e-5)


class _StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        if state.global_step == self.step:
            control.should_training_stop = True


@pytest.mark.slow
def test_resume_after_stop_gives_the_uninterrupted_weights(bench, tmp_path) -> None:
    from safetensors.torch import load_file

    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import run_distill

    # a teacher: a saved random micro model (the point here is the bookkeeping, not quality)
    tok = load_bench_tokenizer(bench)
    teacher_dir = tmp_path / "teacher"
    tiny_llama(tok, seed=5).save_pretrained(teacher_dir)
    tok.save_pretrained(teacher_dir)
    spec = "tiny:" + str(write_model_config(tmp_path))

    def config(out: str, **kw):  # noqa: ANN003, ANN202
        return load_config(None, method="kid", teacher=str(teacher_dir), student=spec, data=str(bench),
                           output_dir=str(tmp_path / out), max_steps=6, save_steps=3, per_device_train_batch_size=4,
                           learning_rate=5e-3, logging_steps=1, seed=3, **kw)

    full = run_distill(config("full"))
    stopped = run_distill(config("parts"), callbacks=[_StopAt(3)])
    assert stopped.steps == 3 and (tmp_path / "parts" / "checkpoint-3").is_dir()
    resumed = run_distill(config("parts", resume_from_checkpoint="auto"))
    assert resumed.steps == 6
    a = load_file(full.model_dir / "model.safetensors")
    b = load_file(resumed.model_dir / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7, msg=k)
    losses = [h["loss"] for h in full.log_history if "loss" in h]
    resumed_losses = [h["loss"] for h in resumed.log_history if "loss" in h]
    assert resumed_losses[-3:] == pytest.approx(losses[-3:], rel=1e-6)


def test_yaml_config_is_overridden_by_the_command_line(tmp_path) -> None:
    from kidsql.commands import distill
    from kidsql.distill.config import given_options, load_config

    path = tmp_path / "run.yaml"
    path.write_text("method: rkd\nlearning-rate: 0.01\nkid_alpha: 0.3\nlora: true\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    distill.add_arguments(parser)
    args = parser.parse_args(["--config", str(path), "--learning-rate", "0.05", "--lora", "false", "--student", "s"])
    config = load_config(args.config, **given_options(args))
    assert (config.method, config.learning_rate, config.kid_alpha, config.lora, config.student) == ("rkd", 0.05, 0.3, False, "s")
    assert config.seed == 0 and config.per_device_train_batch_size == 16  # untouched defaults
    path.write_text("method: rkd\nlearnin_rate: 0.01\n", encoding="utf-8")
    with pytest.raises(KidsqlError, match=r"run\.yaml.*learnin_rate"):
        load_config(path)


def test_cli_train_then_distill_errors(bench, tmp_path, capsys) -> None:
    from kidsql.cli import main

    spec = "tiny:" + str(write_model_config(tmp_path))
    out = tmp_path / "teacher"
    rc = main(["train", "--model", spec, "--data", str(bench), "--out", str(out), "--max_steps", "2",
               "--per_device_train_batch_size", "4", "--logging_steps", "1", "--save_steps", "100"])
    assert rc == 0
    result = json.loads((out / "train_result.json").read_text())
    assert result["steps"] == 2 and result["method"] == "sft" and (out / "final" / "config.json").is_file()
    assert "2 steps" in capsys.readouterr().out
    # distilling without a teacher, or from a teacher with another vocabulary, fails with one line, before training
    assert main(["distill", "--method", "kid", "--student", spec, "--data", str(bench)]) == 2
    assert "needs --teacher" in capsys.readouterr().err
    other = build_tokenizer(["completely different words here", "SELECT nothing"])
    foreign = tmp_path / "foreign"
    tiny_llama(other).save_pretrained(foreign)
    other.save_pretrained(foreign)
    assert main(["distill", "--method", "rkd", "--teacher", str(foreign), "--student", spec, "--data", str(bench),
                 "--output_dir", str(tmp_path / "never")]) == 2
    assert "same tokenizer" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_mask_token_option(bench) -> None:
    from kidsql.distill.trainer import mask_token_id

    tok = load_bench_tokenizer(bench)
    assert mask_token_id(tok, "bos") == tok.bos_token_id != mask_token_id(tok, "eos") == tok.eos_token_id
    assert mask_token_id(tok, "SELECT") == tok.convert_tokens_to_ids("SELECT")
    with pytest.raises(KidsqlError, match="no such token"):
        mask_token_id(tok, "NOT_A_TOKEN_XYZ")
    assert dataclasses.replace(get_method("kid"), name="x").imperfect.mask_token == "bos"


def test_training_prompts_are_cached_per_data_options_and_tokenizer(bench, tmp_path, monkeypatch):
    """The second build reads the cache (the prompt builder is not called); another budget is another entry."""
    import kidsql.prompts
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import training_prompts

    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))
    tok = load_bench_tokenizer(bench)
    config = load_config(None, method="sft", student="x", data=str(bench), output_dir=str(tmp_path / "out"))
    first = training_prompts(config, tok)
    assert len(list((tmp_path / "cache" / "prompts").glob("*.json"))) == 1

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("prompts were rebuilt instead of read from the cache")

    monkeypatch.setattr(kidsql.prompts, "build_prompts", refuse)
    assert training_prompts(config, tok) == first
    smaller = dataclasses.replace(config, max_prompt_tokens=40)
    with pytest.raises(AssertionError, match="rebuilt"):
        training_prompts(smaller, tok)


@pytest.mark.parametrize("name, terms", [("kid", {"divergence", "mle", "kid_rewritten", "kid_changed"}),
                                         ("gkd-rkl", {"divergence", "on_policy"}), ("sft", {"mle"})])
def test_each_loss_term_is_logged_and_they_add_up_to_the_loss(bench, tmp_path, name: str, terms: set[str]) -> None:
    """Trainer.log carries every term's per-token mean (and the source's statistics) beside the loss; on one
    process the loss is divergence + mle_weight * mle, and KID's statistics are fractions of the SQL tokens."""
    method = get_method(name, student_fraction=1.0) if name.startswith("gkd") else get_method(name)
    trainer = _trainer(bench, tmp_path, method)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in (1, 2, 6)])
    loss = float(trainer.compute_loss(trainer.model, batch).detach())
    logs = {"loss": loss}
    trainer.log(logs)
    assert terms <= set(logs) and not ({"divergence", "mle", "kid_rewritten", "kid_changed", "on_policy"} - terms) & set(logs)
    expected = logs.get("divergence", 0.0) + method.mle_weight * logs.get("mle", 0.0)
    assert loss == pytest.approx(expected, rel=1e-5)
    if name == "kid":  # alpha 0.2 of the SQL tokens but the EOS, rounded per row; the guess may keep the gold token
        assert 0.05 < logs["kid_rewritten"] < 0.25 and 0.0 <= logs["kid_changed"] <= 1.0
    if name.startswith("gkd"):
        assert logs["on_policy"] == 1.0
    again = {"loss": loss}
    trainer.log(again)
    assert not terms & set(again), "the terms are cleared after each log"


def _kidsql_calls(fn) -> set[tuple[str, str]]:  # noqa: ANN001
    """(file under kidsql/, qualified name) of every kidsql function that runs inside `fn()`."""
    import kidsql

    root = str(Path(kidsql.__file__).parent) + "/"
    calls: set[tuple[str, str]] = set()

    def profile(frame, event, arg):  # noqa: ANN001, ANN202
        code = frame.f_code
        if event == "call" and code.co_filename.startswith(root):
            calls.add((code.co_filename[len(root):], code.co_qualname))

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_one_default_kid_step_reads_in_two_files_and_at_most_ten_functions(bench, tmp_path) -> None:
    """The step's own logic (sequence source, KID's rewrite, the loss) runs in trainer.py and sequences.py, in at
    most ten functions; everything else it runs is the student-forward helper (`distill/forward.py` and the
    shared-prefix kernels behind it) and the divergences. Measured on one default KID compute_loss (prompt
    reuse on), every kidsql function call recorded."""
    trainer = _trainer(bench, tmp_path, get_method("kid"))
    assert trainer.sources.reuse_prompt  # the default path, with its speed machinery
    batch = trainer.data_collator([trainer.train_dataset[i] for i in (1, 2, 6)])
    calls = _kidsql_calls(lambda: trainer.compute_loss(trainer.model, batch))
    helpers = {"distill/forward.py", "distill/shared_prefix.py", "distill/divergences.py"}
    step = {c for c in calls if c[0] not in helpers}
    assert step == {
        ("distill/trainer.py", "DistillTrainer.compute_loss"),  # the loss: divergence + weighted MLE
        ("distill/trainer.py", "DistillTrainer.sequences"),  # the method's source (no on-policy share for KID)
        ("distill/sequences.py", "imperfect"),  # KID's source
        ("distill/sequences.py", "SourceContext.forward"),  # the student-forward helper over the batch
        ("distill/sequences.py", "imperfect_sequences"),  # mask, the student's guess, rewrite
        ("distill/sequences.py", "num_to_rewrite"),
        ("distill/sequences.py", "choose_positions"),
        ("distill/trainer.py", "DistillTrainer._record"),  # per-term logs
        ("distill/trainer.py", "SpeedMeter.add_tokens"),
    }, sorted(step)
    assert len(step) <= 10
    assert ("distill/forward.py", "StudentForward.logits") in calls and ("distill/forward.py", "PromptPrefix.logits_at") in calls
    assert {("distill/divergences.py", "divergence"), ("distill/divergences.py", "cross_entropy")} <= calls
