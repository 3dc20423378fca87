"""`kidsql distill --method kid --teacher DIR --student SPEC --data DIR [--config x.yaml] [...]`.

Every `DistillConfig` field is an option (see `kidsql distill --help`); a `--config` YAML file supplies defaults
that options on the command line override.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kidsql.distill.config import add_config_arguments

    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from kidsql.distill.config import given_options, load_config
    from kidsql.distill.trainer import run_distill

    from kidsql.validate import writable_folder

    config = load_config(args.config, **given_options(args))
    writable_folder(config.output_dir, "--output_dir")
    print_result(run_distill(config))
    return 0


def print_result(result) -> None:  # noqa: ANN001 - TrainResult, imported lazily
    """One short summary block; the full numbers are in `<output_dir>/train_result.json`."""
    from kidsql.distributed import is_main_process

    if not is_main_process():  # one summary per run, not one per process
        return
    step = f"{result.mean_step_time_s:.3f} s" if result.mean_step_time_s else "n/a"
    tok_s = f"{result.tokens_per_s:.0f}" if result.tokens_per_s else "n/a"
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    procs = f" on {result.num_processes} processes" if result.num_processes > 1 else ""
    print(f"method {result.method}: {result.steps} steps{procs}, final loss {loss}, step {step}, {tok_s} tokens/s")
    print(f"model: {result.model_dir or '(not saved)'}; log: {result.output_dir / 'train_result.json'}")
