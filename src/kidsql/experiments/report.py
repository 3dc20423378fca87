"""Reports: the one place for "mean ± std", the paper's average score, Markdown tables, JSON files and plots.

Everything that prints or stores a number of `kidsql demo` / `kidsql bench` goes through here, so a table, the
JSON and a plot can never disagree on how a number was computed.

Choices:
* std is the SAMPLE standard deviation (ddof=1) over seeds: a handful of seeds estimates the spread of a
  method, it is not the whole population. One value has std 0.
* The average score is the paper's: the plain mean of the EX and TS numbers over the splits (Spider dev and its
  robustness variants), i.e. 2 numbers per split, every number with the same weight.
* Files are written atomically (`kidsql.files`) so a killed run never leaves half a report.json.
* Plots use matplotlib's Agg backend (no display needed) and are imported lazily.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kidsql.errors import KidsqlError

AVERAGE_METRICS = ("ex", "ts")


# ------------------------------------------------------------------------------------------------ numbers


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value). Empty input is an error."""
    xs = [float(v) for v in values]
    if not xs:
        raise KidsqlError("mean_std: no values (no finished run for this cell); run the missing seeds first")
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return mean, 0.0
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(var)


def fmt_mean_std(values: Iterable[float] | None, digits: int = 1) -> str:
    """ "57.3 ± 1.2" over seeds, the bare mean for one value, "-" for none."""
    xs = [float(v) for v in values or [] if v is not None]
    if not xs:
        return "-"
    mean, std = mean_std(xs)
    return f"{mean:.{digits}f}" if len(xs) == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    """A single number, or "-" when it is missing."""
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def average_score(metrics_by_split: Mapping[str, Mapping[str, float | None]], splits: Sequence[str] | None = None) -> float:
    """The paper's score: plain mean of EX and TS over `splits` (default: every split given).

    A missing number is an error rather than silently averaging fewer numbers, which would make methods
    incomparable.
    """
    names = list(splits) if splits is not None else list(metrics_by_split)
    if not names:
        raise KidsqlError("average_score: no splits given; evaluate at least one split")
    values = []
    for split in names:
        row = metrics_by_split.get(split)
        for metric in AVERAGE_METRICS:
            value = None if row is None else row.get(metric)
            if value is None:
                raise KidsqlError(f"average_score: {metric.upper()} missing for split {split!r}; evaluate it first")
            values.append(float(value))
    return sum(values) / len(values)


def relative(value: float | None, reference: float | None) -> float | None:
    """value / reference (e.g. step time relative to SFT), None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


# ------------------------------------------------------------------------------------------------- tables


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric_from: int = 1) -> str:
    """A GitHub Markdown table; columns from `numeric_from` on are right-aligned."""
    if any(len(r) != len(headers) for r in rows):
        raise KidsqlError("markdown_table: a row has a different number of cells than the header")
    align = ["---" if i < numeric_from else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------------- plots


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_score_vs_latency(points: Sequence[Mapping[str, Any]], path: Path, *, title: str = "") -> Path:
    """Average score against training latency, one point per method with error bars.

    Each point: {"name", "latency" (relative to SFT), "latency_std", "score", "score_std"}.
    """
    if not points:
        raise KidsqlError(f"{path}: nothing to plot; no finished runs")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for p in points:
        x = p.get("latency")
        x = 1.0 if x is None else x
        ax.errorbar(x, p["score"], xerr=p.get("latency_std") or 0.0, yerr=p.get("score_std") or 0.0,
                    fmt="o", capsize=3, label=p["name"])
        ax.annotate(p["name"], (x, p["score"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("training latency (mean step time / SFT's)")
    ax.set_ylabel("average score (EX and TS over splits)")
    ax.set_title(title or "score against training latency (error bars: std over seeds)")
    ax.grid(alpha=0.3)
    return _save_figure(plt, fig, path)


def _save_figure(plt, fig, path: Path) -> Path:  # noqa: ANN001 - matplotlib objects
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_learning_curves(curves: Mapping[str, Sequence[Sequence[Sequence[float]]]], path: Path, *,
                         ylabel: str = "dev EX (fixed subset)") -> Path:
    """One line per method (mean over seeds, shaded ± std) of a metric against optimiser steps."""
    from kidsql.experiments.curves import mean_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    drawn = 0
    for name, runs in curves.items():
        xs, means, stds = mean_curve([r for r in runs if r])
        if not xs:
            continue
        ax.plot(xs, means, marker="o", markersize=3, label=name)
        ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)], alpha=0.15)
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no learning-curve points (curve_every 0?)", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(ylabel)
    ax.set_title("learning curves (mean over seeds, band: std)")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    return _save_figure(plt, fig, path)


# ------------------------------------------------------------------------------------------- environment


def environment() -> dict[str, Any]:
    """What a report records about where it ran."""
    import datetime
    import platform
    import sys

    import torch

    import kidsql

    return {"command": " ".join(["kidsql", *sys.argv[1:]]) if sys.argv and "kidsql" in sys.argv[0] else " ".join(sys.argv),
            "argv": list(sys.argv), "kidsql_version": kidsql.__version__, "torch_version": torch.__version__,
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
