"""Paired comparisons of two methods scored on the same examples and seeds, with a bootstrap interval.

Why paired: two methods answer the same dev questions, so most of the example-to-example variation is shared;
the difference per (seed, example) removes it, and the interval is that of the difference itself, not two
overlapping mean ± std bars. Why this bootstrap: both the examples (a fixed sample of questions) and the seeds
(training randomness) are samples, so each bootstrap draw resamples the seeds and, independently, the examples
(a two-level bootstrap; with one seed, the examples only). The 95 % interval is the percentile interval of the
mean difference over the draws. A difference whose interval contains 0 is not a win or a loss (`verdict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PairedDifference:
    """Mean of (a - b) over seeds and examples, in the unit given (EX points: 100 * fraction), and its interval."""

    diff: float
    ci95: tuple[float, float]
    n_examples: int
    n_seeds: int

    @property
    def verdict(self) -> str:
        """"better" / "worse" when the whole interval lies above / below 0, else "tie" (not distinguishable)."""
        lo, hi = self.ci95
        return "better" if lo > 0 else "worse" if hi < 0 else "tie"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ci95": list(self.ci95), "verdict": self.verdict}


def paired_bootstrap(a: Any, b: Any, *, n_boot: int = 10_000, level: float = 0.95, seed: int = 0,
                     scale: float = 100.0) -> PairedDifference:
    """Paired difference of per-example scores `a` and `b`, shaped [seeds, examples] (or [examples] for one
    seed; 0/1 correctness, or any number), times `scale`, with its `level` percentile bootstrap interval.

    Each of `n_boot` draws takes seeds and examples with replacement (multinomial counts, so a draw is one matrix
    product) and averages the differences they select; `seed` makes the interval reproducible. Examples missing
    in either (NaN, e.g. a gold query that failed) are dropped from both.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired scores need the same non-empty [seeds, examples] shape, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a).any(0) | np.isnan(b).any(0))
    d = (a - b)[:, keep] * scale
    n_seeds, n = d.shape
    if n == 0:
        raise ValueError("no example is scored for both methods")
    rng = np.random.default_rng(seed)
    ex_w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) / n  # [n_boot, n]
    seed_w = (rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot) / n_seeds
              if n_seeds > 1 else np.ones((n_boot, 1)))
    draws = (seed_w * (ex_w @ d.T)).sum(1)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(draws, [alpha, 1.0 - alpha])
    return PairedDifference(diff=float(d.mean()), ci95=(float(lo), float(hi)), n_examples=n, n_seeds=n_seeds)


def describe(name: str, other: str, p: PairedDifference, unit: str = "EX") -> str:
    """One clause for a report: "KID vs SFT: +4.2 EX [1.1, 7.3], better" (ties are called ties)."""
    word = {"better": f"{name} better", "worse": f"{name} worse", "tie": "no clear difference"}[p.verdict]
    return f"{name} - {other} = {p.diff:+.1f} {unit} (95 % CI {p.ci95[0]:+.1f} to {p.ci95[1]:+.1f}): {word}"
