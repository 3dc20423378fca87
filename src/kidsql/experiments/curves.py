"""Learning curves: dev EX of a model while it trains, written as JSON lines and read back for the report.

The callback evaluates prompts built exactly as the training prompts are (`kidsql.split_prompts`), because the
model has no saved prompt options until it finishes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kidsql.experiments.report import mean_std

def dev_curve_callback(bench_dir: Path, tokenizer: Any, path: Path, *, every: int, size: int, split: str = "dev",
                       max_prompt_tokens: int = 1024, max_new_tokens: int = 96, batch_size: int = 16,
                       num_sample_values: int = 0, matched_values: bool = True, use_evidence: bool = True) -> Any:
    """A TrainerCallback (`kidsql.distill.exec_eval.ExecutionEval`): every `every` steps, greedy SQL for the first
    `size` examples of `split`, scored by execution (EX), appended as {"step", "ex"} to `path` (JSON lines)."""
    from kidsql.distill.exec_eval import ExecutionEval
    from kidsql.experiments.steps import split_examples
    from kidsql.split_prompts import build_split_prompts, prompt_options

    options = prompt_options(tokenizer, max_prompt_tokens=max_prompt_tokens, num_sample_values=num_sample_values,
                             matched_values=matched_values)
    prompts, _ = build_split_prompts(bench_dir, split, tokenizer, options, limit=size, use_evidence=use_evidence)
    examples, bench = split_examples(bench_dir, split, size, use_evidence=use_evidence)
    return ExecutionEval(prompts, examples, bench, tokenizer, every=every, path=path, max_new_tokens=max_new_tokens,
                         batch_size=batch_size)


def read_curve(path: Path) -> list[list[float]]:
    """[[step, ex], ...] from a DevCurve file, one point per step (the last one wins after a resume)."""
    if not Path(path).is_file():
        return []
    points: dict[int, float] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            points[int(rec["step"])] = float(rec["ex"])
    return [[float(s), points[s]] for s in sorted(points)]


def mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> tuple[list[float], list[float], list[float]]:
    """Steps, mean and std of several (step, value) curves, over the steps every curve has."""
    common = None
    for curve in curves:
        steps = {int(s) for s, _ in curve}
        common = steps if common is None else common & steps
    xs = sorted(common or [])
    means, stds = [], []
    for step in xs:
        m, s = mean_std([v for c in curves for st, v in c if int(st) == step])
        means.append(m)
        stds.append(s)
    return [float(x) for x in xs], means, stds
