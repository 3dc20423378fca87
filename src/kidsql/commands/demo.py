"""`kidsql demo`: the main job on the embedded benchmark (`kidsql.experiments.demo`).

Every `DemoConfig` field is an option and may be set in a YAML file given with `--config`; the command line wins.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kidsql.config import add_dataclass_arguments, given_fields, load_dataclass
from kidsql.experiments.demo import DemoConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(parser, DemoConfig)


def run(args: argparse.Namespace) -> int:
    from kidsql.experiments.demo import run_demo

    cfg = load_dataclass(DemoConfig, getattr(args, "config", None), **given_fields(args, DemoConfig))
    report = run_demo(cfg)
    print(report["markdown_table"], end="")
    print(report["conclusion"])
    print(f"wrote {Path(cfg.out) / 'report.md'} and {Path(cfg.out) / 'report.json'}")
    return 0
