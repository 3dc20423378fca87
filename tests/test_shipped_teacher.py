"""The demo's shipped teacher: current with the benchmark, intact (checksum), used only for its own setup, and
scoring what its card says on the first dev examples."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kidsql.errors import KidsqlError
from kidsql.experiments.config import RunConfig
from kidsql.files import file_sha256
from kidsql.experiments.shipped_teacher import (BUILD_COMMAND, CHECK_EXAMPLES, SHIPPED_DIR, WEIGHTS, read_card, setup_of,
                                    shipped_teacher_for, verified)


@pytest.fixture(scope="module")
def card() -> dict:
    found = read_card()
    assert found is not None, f"{SHIPPED_DIR} has no card.json: build it with `{BUILD_COMMAND}`"
    return found


def test_card_matches_the_current_benchmark_and_demo_setup(card) -> None:
    """Fails when the benchmark's format version or the demo's teacher setup changes: rebuild the teacher."""
    from kidsql.experiments.demo import DemoConfig

    assert card["setup"] == setup_of(DemoConfig()), f"stale shipped teacher: run `{BUILD_COMMAND}` and commit it"
    assert card["training_command"] == BUILD_COMMAND


def test_weights_match_the_checksum_and_a_damaged_copy_is_refused(card, tmp_path) -> None:
    assert file_sha256(SHIPPED_DIR / WEIGHTS) == card["sha256"]
    assert verified() == SHIPPED_DIR
    copy = tmp_path / "teacher"
    shutil.copytree(SHIPPED_DIR, copy)
    blob = bytearray((copy / WEIGHTS).read_bytes())
    blob[-1] ^= 1
    (copy / WEIGHTS).write_bytes(bytes(blob))
    with pytest.raises(KidsqlError, match="checksum"):
        verified(copy)


def test_used_only_for_the_setup_it_was_trained_with(card) -> None:
    assert shipped_teacher_for(RunConfig()) == SHIPPED_DIR
    assert shipped_teacher_for(RunConfig(teacher_steps=500)) is None  # --teacher_steps N retrains
    assert shipped_teacher_for(RunConfig(shipped_teacher=False)) is None
    assert shipped_teacher_for(RunConfig(teacher="tiny:4m")) is None
    assert shipped_teacher_for(RunConfig(bench_size="cpu-medium")) is None
    assert shipped_teacher_for(RunConfig(data="somewhere")) is None


@pytest.mark.slow
def test_loads_and_scores_what_its_card_says_on_the_first_dev_examples(card, isolated_cache) -> None:
    """The embedded benchmark generated afresh (byte-identical for its seed), the teacher loaded from the package,
    greedy SQL for the first CHECK_EXAMPLES dev questions, scored by execution: the card's numbers."""
    from kidsql.experiments import steps

    cfg = RunConfig()
    bench = steps.resolve_benchmark(cfg)
    preds = steps.predict(SHIPPED_DIR, bench, "dev", CHECK_EXAMPLES, max_new_tokens=cfg.max_new_tokens,
                      batch_size=cfg.gen_batch_size)
    got = steps.summary_metrics(steps.score(bench, "dev", preds, limit=CHECK_EXAMPLES, workers=1, show_progress=False))
    want = card["dev_scores_first_n"][str(CHECK_EXAMPLES)]
    assert got == pytest.approx(want)
    assert want["ex"] >= 60  # the demo's teacher is worth distilling from (>= 60 % dev EX)
    assert Path(steps.resolve_teacher(bench, cfg)) == SHIPPED_DIR
