"""Paired bootstrap intervals against hand-computed and exhaustively enumerated bootstrap distributions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kidsql.stats import describe, paired_bootstrap


def test_hand_made_case_one_seed() -> None:
    """d = (1, 0, 0, 0) (EX points 100, 0, 0, 0). A resample of 4 examples holds k ~ Binomial(4, 1/4) copies of
    the first: P(k) = .316, .422, .211, .047, .004 for k = 0..4, so the mean is 25 k with cdf .316, .738, .949,
    .996, 1. The 2.5 % quantile is 0 (k = 0) and the 97.5 % quantile 75 (k = 3): interval [0, 75], a tie."""
    p = paired_bootstrap([1, 1, 0, 0], [0, 1, 0, 0], n_boot=20_000)
    assert p.diff == pytest.approx(25.0)
    assert p.ci95 == pytest.approx((0.0, 75.0))
    assert p.verdict == "tie" and (p.n_examples, p.n_seeds) == (4, 1)


def test_constant_difference_has_a_point_interval_and_is_a_win_or_loss() -> None:
    better = paired_bootstrap([[1, 1, 1], [1, 1, 1]], [[0, 0, 0], [0, 0, 0]], n_boot=500)
    assert better.diff == 100.0 and better.ci95 == pytest.approx((100.0, 100.0)) and better.verdict == "better"
    # d = (-100, -100, 0, -100): a resample is 0 only if it takes the third example 4 times (p = 1/256 < 2.5 %)
    worse = paired_bootstrap([0, 0, 1, 0], [1, 1, 1, 1], n_boot=20_000)
    assert worse.diff == pytest.approx(-75.0) and worse.ci95[1] < 0 and worse.verdict == "worse"
    # d = (-100, 0, -100): all three draws on the 0 has p = 1/27 > 2.5 %, so the interval reaches 0: a tie
    assert paired_bootstrap([0, 1, 0], [1, 1, 1], n_boot=20_000).verdict == "tie"


def test_seeds_are_resampled_too() -> None:
    """Seed 0: the method wins every example; seed 1: it ties every example. Examples alone would say +50 with
    no doubt; resampling the two seeds gives 100 (both seed 0, p = 1/4), 50 (p = 1/2) or 0 (p = 1/4):
    interval [0, 100], a tie."""
    a = [[1] * 50, [0] * 50]
    b = [[0] * 50, [0] * 50]
    p = paired_bootstrap(a, b, n_boot=20_000)
    assert p.diff == pytest.approx(50.0)
    assert p.ci95 == pytest.approx((0.0, 100.0))
    assert p.verdict == "tie" and p.n_seeds == 2


def test_interval_matches_the_exhaustive_bootstrap_distribution() -> None:
    """All 5^5 equally likely resamples of 5 examples, enumerated: their 2.5 % and 97.5 % quantiles."""
    a, b = np.array([1, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 0])
    d = (a - b) * 100.0
    means = np.sort([d[list(idx)].mean() for idx in itertools.product(range(5), repeat=5)])
    lo, hi = means[math.floor(0.025 * len(means))], means[math.ceil(0.975 * len(means)) - 1]
    p = paired_bootstrap(a, b, n_boot=50_000, seed=3)
    assert p.diff == pytest.approx(d.mean())
    assert p.ci95 == pytest.approx((lo, hi))


def test_missing_examples_are_dropped_from_both_and_shapes_must_agree() -> None:
    p = paired_bootstrap([1, float("nan"), 1], [0, 1, 0], n_boot=100)
    assert p.n_examples == 2 and p.diff == 100.0
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1, 0, 1])


def test_describe_never_calls_a_tie_a_win() -> None:
    tie = paired_bootstrap([1, 1, 0, 0], [0, 1, 0, 0], n_boot=2000)
    text = describe("KID", "SFT", tie)
    assert "+25.0 EX" in text and "no clear difference" in text and "better" not in text
    assert describe("KID", "SFT", paired_bootstrap([1, 1], [0, 0], n_boot=100)).endswith("KID better")
