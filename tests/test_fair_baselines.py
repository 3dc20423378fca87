"""Issue 14: each baseline samples as its reference code does, the student's own guesses are eval-mode guesses,
and the student warm-up is trained once and shared by every method and seed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from kidsql.distill.methods import get_method, student_sampling

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import load_bench_tokenizer, tiny_llama, write_benchmark, write_model_config  # noqa: E402


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("fair") / "bench")


# (method, temperature, top_k, top_p): TRL GKDConfig/GKDTrainer; f-distill's run_tvd_symm.sh; ImitKD's configs
REFERENCE = [("gkd", 0.9, 0, 1.0), ("gkd-rkl", 0.9, 0, 1.0), ("fdistill", 1.0, 30, 1.0), ("imitkd", 1.0, 5, 1.0)]


@pytest.mark.parametrize(("name", "temperature", "top_k", "top_p"), REFERENCE)
def test_on_policy_sampling_parameters_reach_generate(bench, tmp_path, monkeypatch, name, temperature, top_k,
                                                      top_p) -> None:
    """Through the real path: `build_trainer` from a config, then the trainer's on-policy batch; the
    GenerationConfig that HF `generate` receives carries the method's reference values (and the options win)."""
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import build_trainer

    spec = "tiny:" + str(write_model_config(tmp_path))
    teacher = tmp_path / "teacher"
    tok = load_bench_tokenizer(bench)
    tiny_llama(tok, seed=1).save_pretrained(teacher)
    seen: list[Any] = []

    def run(**options: Any) -> Any:
        config = load_config(None, method=name, student=spec, teacher=str(teacher), data=str(bench),
                             tokenizer=str(bench / "tokenizer"), output_dir=str(tmp_path / "out"), max_steps=1,
                             per_device_train_batch_size=2, gen_max_new_tokens=3, student_fraction=1.0, **options)
        trainer = build_trainer(config)
        model = trainer.model
        original = model.generate

        def spy(*args: Any, **kwargs: Any) -> Any:
            seen.append(kwargs["generation_config"])
            return original(*args, **kwargs)

        monkeypatch.setattr(model, "generate", spy)
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.state.max_steps = 1
        trainer.state.global_step = 1  # ImitKD's share ramps with the step: at the end it is student_fraction (1)
        trainer.sequences(model, batch, seed=0)
        return seen[-1]

    cfg = run()
    assert cfg.do_sample is True
    assert (cfg.temperature, cfg.top_k, cfg.top_p) == pytest.approx((temperature, top_k, top_p))
    cfg = run(gen_temperature=0.5, gen_top_k=7, gen_top_p=0.8)
    assert (cfg.temperature, cfg.top_k, cfg.top_p) == pytest.approx((0.5, 7, 0.8))


def test_methods_without_student_samples_keep_plain_sampling() -> None:
    for name in ("sft", "fkd", "rkd", "seqkd", "kid"):
        g = student_sampling(get_method(name), max_new_tokens=5)
        assert (g.temperature, g.top_k, g.top_p) == (1.0, 0, 1.0)


def _kid_batch(tok: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    prompt = tok("question : how many singers are there ? sql :")["input_ids"]
    sql = tok("SELECT count(*) FROM singer WHERE country = 'France'", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + sql + [tok.eos_token_id]] * 3)
    sql_mask = torch.zeros_like(ids, dtype=torch.bool)
    sql_mask[:, len(prompt):] = True
    return ids, torch.ones_like(ids), sql_mask


def test_kid_rewrite_is_the_students_eval_mode_guess(bench) -> None:
    """A student with heavy dropout, in train mode: the rewrite is the same twice with one seed (dropout is off
    while it guesses), equals the eval-mode model's argmax, and the model is back in train mode afterwards."""
    from _kid import kid_rewrite

    from kidsql.distill.forward import has_dropout

    tok = load_bench_tokenizer(bench)
    student = tiny_llama(tok, seed=3, attention_dropout=0.9)
    student.train()
    assert has_dropout(student) and not has_dropout(tiny_llama(tok, seed=3))
    ids, attn, sql = _kid_batch(tok)

    def rewrite() -> torch.Tensor:
        return kid_rewrite(student, ids, sql, alpha=0.5, mask_token_id=tok.bos_token_id, attention_mask=attn,
                                   eos_token_id=tok.eos_token_id, generator=torch.Generator().manual_seed(0))

    (y1, chosen), (y2, _) = rewrite(), rewrite()
    assert student.training
    assert torch.equal(y1, y2)
    # the guesses are the eval-mode argmax at t - 1 of the masked sequence
    masked = ids.masked_fill(chosen, tok.bos_token_id)
    student.eval()
    with torch.no_grad():
        expected = student(input_ids=masked, attention_mask=attn).logits.argmax(-1)
    student.train()
    b, t = chosen.nonzero(as_tuple=True)
    assert torch.equal(y1[b, t], expected[b, t - 1])
    # the check has teeth: in train mode the same forward gives other argmaxes (dropout 0.9 acts)
    with torch.no_grad():
        noisy = [student(input_ids=masked, attention_mask=attn).logits.argmax(-1)[b, t - 1] for _ in range(3)]
    assert any(not torch.equal(n, expected[b, t - 1]) for n in noisy)


def test_trainer_with_a_dropout_student_rewrites_identically_twice(bench, tmp_path) -> None:
    """Through the trainer's own sequence step (prompt reuse on): a dropout student's rewrite does not read the
    train-mode prompt keys/values, so the same seed gives the same imperfect sequence twice."""
    from kidsql.distill.batches import SqlCollator, encode_examples
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import DistillTrainer, training_prompts, mask_token_id

    tok = load_bench_tokenizer(bench)
    config = load_config(None, method="kid", student="x", data=str(bench), output_dir=str(tmp_path / "out"),
                         per_device_train_batch_size=4, kid_alpha=0.5)
    prompts, sqls = training_prompts(config, tok)
    trainer = DistillTrainer(
        model=tiny_llama(tok, seed=2, attention_dropout=0.9), args=config,
        train_dataset=encode_examples(tok, prompts, sqls), data_collator=SqlCollator(tok.pad_token_id),
        processing_class=tok, method=get_method("kid", kid_alpha=0.5), teacher=tiny_llama(tok, seed=1),
        mask_token_id=mask_token_id(tok, "bos"),
    )
    assert trainer.sources.reuse_prompt and not trainer.sources.guess_reuses_prompt
    model = trainer.model
    model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    first, second = (trainer.sequences(model, batch, seed=11).ids for _ in range(2))
    assert torch.equal(first, second) and model.training


def test_student_warmup_is_trained_once_and_shared(bench, tmp_path, monkeypatch, isolated_cache) -> None:
    """Two methods x two seeds of a bench all start from one warm-up folder, trained by one SFT run."""
    from kidsql.experiments import bench as B
    from kidsql.experiments.config import student_budget
    from kidsql.distill import trainer as T

    calls: list[tuple[str, str]] = []
    real = T.run_distill

    def counting(config: Any, **kw: Any) -> Any:
        calls.append((config.method, config.student))
        return real(config, **kw)

    monkeypatch.setattr(T, "run_distill", counting)
    spec = "tiny:" + str(write_model_config(tmp_path))
    tok = load_bench_tokenizer(bench)
    teacher = tmp_path / "teacher"
    tiny_llama(tok, seed=1).save_pretrained(teacher)
    tok.save_pretrained(teacher)
    cfg = B.BenchConfig(out=str(tmp_path / "b"), data=str(bench), teacher=str(teacher), teacher_steps=0,
                        student=spec, methods="sft,rkd", seeds=2, splits="dev", student_steps=2,
                        student_warmup_steps=3, batch_size=2, warmup_steps=0, curve_every=0, isolate_runs=False,
                        eval_limit=4, max_new_tokens=8, eval_workers=1)
    B.run_bench(cfg)
    warm = [c for c in calls if c[1] == spec]
    runs = [c for c in calls if c[1] != spec]
    assert len(warm) == 1 and warm[0][0] == "sft"
    assert len(runs) == 4 and len({s for _, s in runs}) == 1  # every method and seed: one start
    start = Path(runs[0][1])
    assert start.parent.parent.name == "student_warmups"
    assert '"steps": 3' in (start.parent / "train_result.json").read_text()
    # a second bench (another folder, same setup) reuses the cached warm-up: no new SFT run from the spec
    calls.clear()
    B.run_bench(B.BenchConfig(**{**cfg.__dict__, "out": str(tmp_path / "b2"), "seeds": 1, "methods": "sft"}))
    assert [c for c in calls if c[1] == spec] == [] and {s for _, s in calls} == {str(start)}
    assert student_budget(cfg).max_steps == 2  # the methods' own budget is untouched by the warm-up
