"""kidsql.experiments.report: numbers against hand-computed values, tables, PNG plots."""

from __future__ import annotations

import math

import pytest

from kidsql.errors import KidsqlError
from kidsql.experiments.curves import mean_curve
from kidsql.experiments.report import (average_score, fmt_mean_std, markdown_table, mean_std, plot_learning_curves,
                                       plot_score_vs_latency, relative)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_mean_std_is_the_sample_std():
    # mean of 2,4,4,4,5,5,7,9 = 5; squared deviations sum to 32; sample variance 32/7
    mean, std = mean_std([2, 4, 4, 4, 5, 5, 7, 9])
    assert mean == pytest.approx(5.0)
    assert std == pytest.approx(math.sqrt(32 / 7))
    assert mean_std([3.5]) == (3.5, 0.0)
    with pytest.raises(KidsqlError):
        mean_std([])


def test_fmt_mean_std():
    assert fmt_mean_std([50.0, 60.0]) == "55.0 ± 7.1"  # sqrt(50) = 7.07
    assert fmt_mean_std([1.234], digits=2) == "1.23"
    assert fmt_mean_std([]) == "-"
    assert fmt_mean_std([1.0, 1.5, 2.0], digits=2) == "1.50 ± 0.50"


def test_average_score_is_the_plain_mean_of_ex_and_ts_over_splits():
    metrics = {"dev": {"ex": 60.0, "ts": 50.0, "em": 99.0}, "dev_syn": {"ex": 40.0, "ts": 30.0},
               "dev_realistic": {"ex": 45.0, "ts": 35.0}, "dev_dk": {"ex": 20.0, "ts": 10.0}}
    # (60+50+40+30+45+35+20+10) / 8 = 290 / 8; EM never counts
    assert average_score(metrics) == pytest.approx(36.25)
    assert average_score(metrics, ["dev"]) == pytest.approx(55.0)
    with pytest.raises(KidsqlError, match="TS missing for split 'dev_dk'"):
        average_score({**metrics, "dev_dk": {"ex": 1.0, "ts": None}})
    with pytest.raises(KidsqlError):
        average_score(metrics, ["dev", "nope"])


def test_relative():
    assert relative(3.0, 2.0) == pytest.approx(1.5)
    assert relative(None, 2.0) is None and relative(1.0, 0.0) is None


def test_markdown_table_shape():
    text = markdown_table(["a", "b", "c"], [["x", 1, 2.5], ["y", 3, 4]])
    lines = text.strip().splitlines()
    assert lines[0] == "| a | b | c |"
    assert lines[1] == "|---|---:|---:|"
    assert lines[3] == "| y | 3 | 4 |"
    with pytest.raises(KidsqlError):
        markdown_table(["a"], [["x", "y"]])


def test_mean_curve_over_common_steps():
    steps, means, stds = mean_curve([[[1, 10.0], [2, 20.0], [3, 90.0]], [[1, 30.0], [2, 40.0]]])
    assert steps == [1.0, 2.0]  # step 3 only in one run
    assert means == pytest.approx([20.0, 30.0])
    assert stds == pytest.approx([math.sqrt(200), math.sqrt(200)])


def test_plots_are_png_files(tmp_path):
    points = [{"name": "sft", "score": 40.0, "score_std": 1.0, "latency": 1.0, "latency_std": 0.0},
              {"name": "kid", "score": 45.0, "score_std": 2.0, "latency": 1.8, "latency_std": 0.1},
              {"name": "x", "score": 42.0, "score_std": 0.0, "latency": None, "latency_std": 0.0}]
    a = plot_score_vs_latency(points, tmp_path / "a.png")
    b = plot_learning_curves({"sft": [[[5, 10.0], [10, 20.0]], [[5, 12.0], [10, 25.0]]], "kid": [[]]}, tmp_path / "b.png")
    for path in (a, b):
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC
        assert len(data) > 5000
    with pytest.raises(KidsqlError):
        plot_score_vs_latency([], tmp_path / "c.png")
