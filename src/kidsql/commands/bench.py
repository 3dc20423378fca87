"""`kidsql bench`: every method over several seeds and the robustness splits; see `kidsql.experiments.bench`.

Every `BenchConfig` field is an option (`--masking-only`, `--alphas 0.1,0.2`, ...) and may be set in a YAML file
given with `--config`; the command line wins. Re-running the same command skips finished runs and resumes an
interrupted one, then rewrites report.md, report.json and the plots from every finished run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kidsql.config import add_dataclass_arguments, given_fields, load_dataclass
from kidsql.experiments.bench import BenchConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, BenchConfig)


def run(args: argparse.Namespace) -> int:
    from kidsql.experiments.bench import run_bench

    cfg = load_dataclass(BenchConfig, getattr(args, "config", None), **given_fields(args, BenchConfig))
    outcome = run_bench(cfg)
    print(outcome.data["markdown_table"], end="")
    print(f"{outcome.trained} run(s) trained, {outcome.skipped} reused; wrote {Path(cfg.out) / 'report.md'}, "
          f"report.json and plots")
    return 0
