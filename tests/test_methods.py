"""Methods are data with the paper's defaults, and every named method trains: its loss falls on a tiny model."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from kidsql.distill.methods import METHODS, get_method
from kidsql.errors import KidsqlError

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import write_benchmark, write_model_config  # noqa: E402


def test_named_methods_follow_the_paper() -> None:
    kid = METHODS["kid"]
    assert (kid.sequences, kid.divergence, kid.mle_weight) == ("imperfect", "rkl", 1.0)
    assert kid.imperfect.mle_on == "clean"  # the paper's CE on the clean gold SQL
    o = kid.imperfect
    assert (o.alpha, o.strategy, o.rewrite, o.mask_token, o.kl_positions) == (0.2, "random", "argmax", "bos", "all")
    assert METHODS["sft"].divergence is None and not METHODS["sft"].needs_teacher
    assert METHODS["seqkd"].sequences == "teacher" and METHODS["seqkd"].divergence is None
    for name, div in [("fkd", "fkl"), ("rkd", "rkl"), ("imitkd", "fkl"), ("gkd-fkl", "fkl"), ("gkd-rkl", "rkl"), ("gkd", "jsd")]:
        assert METHODS[name].divergence == div
    # on gold data every KD baseline gets the MLE term (the paper's fairness rule); on-policy mixes use lambda 0.5
    assert all(METHODS[n].mle_weight == 1.0 for n in ("fkd", "rkd", "imitkd", "gkd", "kid"))
    assert all(get_method(n).student_fraction == 0.5 for n in ("gkd", "gkd-jsd", "fdistill"))
    assert dataclasses.replace(get_method("gkd-jsd"), name="gkd") == METHODS["gkd"]  # the same row, not a copy
    assert METHODS["imitkd"].fraction_schedule == "linear" and METHODS["gkd"].fraction_schedule == "constant"
    assert METHODS["fdistill"].divergence == "tvd" and METHODS["fdistill"].sequences == "teacher"


def test_overrides_replace_fields_and_unknown_ones_fail() -> None:
    m = get_method("KID", kid_alpha=0.3, kid_strategy="hard", mle_weight=0.5, beta=None)
    assert (m.imperfect.alpha, m.imperfect.strategy, m.mle_weight, m.beta) == (0.3, "hard", 0.5, 0.5)
    assert get_method("rkd", divergence="none").divergence is None
    with pytest.raises(KidsqlError, match="unknown method"):
        get_method("kidd")
    with pytest.raises(KidsqlError, match="kid_colour"):
        get_method("kid", kid_colour=1)
    with pytest.raises(KidsqlError, match="strategy"):
        get_method("kid", kid_strategy="hardest")
    with pytest.raises(KidsqlError, match="alpha"):
        get_method("kid", kid_alpha=1.5)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A benchmark, the micro model spec, and a teacher fine-tuned on it with SFT."""
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import run_distill

    root = tmp_path_factory.mktemp("methods")
    bench = write_benchmark(root / "bench")
    spec = "tiny:" + str(write_model_config(root))
    teacher = run_distill(load_config(
        None, method="sft", student=spec, data=str(bench), output_dir=str(root / "teacher"), max_steps=60,
        learning_rate=3e-3, per_device_train_batch_size=8, logging_steps=20, save_steps=10_000, seed=7,
    ))
    return root, bench, spec, teacher


def _eval_loss(trainer) -> float:
    """The method's loss on all training sequences, deterministic: no on-policy coin, KID masking 'uniform'."""
    method = trainer.method
    trainer.method = dataclasses.replace(method, student_fraction=0.0,
                                         imperfect=dataclasses.replace(method.imperfect, strategy="uniform"))
    try:
        batch = trainer.data_collator(list(trainer.train_dataset))
        with torch.no_grad():
            return float(trainer.compute_loss(trainer.model, batch).detach())
    finally:
        trainer.method = method


def test_sft_teacher_learned(setup) -> None:
    _, _, _, teacher = setup
    losses = [h["loss"] for h in teacher.log_history if "loss" in h]
    assert teacher.steps == 60 and losses[-1] < 0.6 * losses[0]
    assert (teacher.model_dir / "config.json").is_file() and teacher.mean_step_time_s > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_reduces_its_loss(setup, name: str) -> None:
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import build_trainer

    root, bench, spec, teacher = setup
    config = load_config(
        None, method=name, teacher=str(teacher.model_dir), student=spec, data=str(bench), output_dir=str(root / name),
        max_steps=15, learning_rate=3e-3, per_device_train_batch_size=8, logging_steps=5, save_steps=10_000,
        gen_max_new_tokens=12, cache_dir=str(root / "cache"), seed=1,
    )
    trainer = build_trainer(config)
    before = _eval_loss(trainer)
    trainer.train()
    after = _eval_loss(trainer)
    assert trainer.state.global_step == 15
    assert after < 0.85 * before, f"{name}: loss {before:.4f} -> {after:.4f}"


def test_on_policy_fraction_schedules():
    imit, gkd = METHODS["imitkd"], METHODS["gkd"]
    # ImitKD: no student samples at the start, half-way at mid-run, all at the end (linear ramp to 1.0)
    assert [imit.on_policy_fraction(s, 100) for s in (0, 50, 100, 150)] == [0.0, 0.5, 1.0, 1.0]
    # GKD: lambda throughout
    assert {gkd.on_policy_fraction(s, 100) for s in (0, 50, 100)} == {0.5}
    with pytest.raises(KidsqlError, match="fraction_schedule"):
        dataclasses.replace(gkd, fraction_schedule="cosine")
