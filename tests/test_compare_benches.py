"""benchmarks/compare_benches.py: two bench folders' dev EX per method and their paired difference."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from compare_benches import compare, markdown  # noqa: E402


def write_run(root: Path, method: str, seed: int, verdicts: list[bool | None]) -> None:
    run = root / "runs" / method / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({"splits": {"dev": {"ex_per_example": verdicts}}}))


def test_means_ranks_and_paired_difference_by_hand(tmp_path: Path) -> None:
    first, second = tmp_path / "nowarm", tmp_path / "warm"
    # sft: 1/4 and 2/4 correct in the first bench, 3/4 and 4/4 in the second (the same examples, paired)
    write_run(first, "sft", 0, [True, False, False, False])
    write_run(first, "sft", 1, [True, True, False, False])
    write_run(second, "sft", 0, [True, True, True, False])
    write_run(second, "sft", 1, [True, True, True, True])
    # kid: 3/4 in both, an unscored example (None) in the second bench is left out of both
    write_run(first, "kid", 0, [True, True, True, False])
    write_run(second, "kid", 0, [True, True, None, False])
    write_run(second, "kid", 1, [True, True, True, True])  # a seed only one bench ran is left out
    rows = {r["method"]: r for r in compare(first, second)}
    assert rows["sft"]["first"] == pytest.approx(37.5) and rows["sft"]["second"] == pytest.approx(87.5)
    assert rows["sft"]["paired"]["diff"] == pytest.approx(50.0) and rows["sft"]["paired"]["n_seeds"] == 2
    assert rows["kid"]["seeds"] == [0] and rows["kid"]["first"] == pytest.approx(75.0)
    assert rows["kid"]["second"] == pytest.approx(200 / 3)
    assert rows["kid"]["paired"]["diff"] == pytest.approx(0.0) and rows["kid"]["paired"]["n_examples"] == 3
    text = markdown(compare(first, second), first, second, "dev")
    assert "| sft | 37.5 (2) | 87.5 (1) | +50.0" in text and "| kid | 75.0 (1) | 66.7 (2) | +0.0" in text
