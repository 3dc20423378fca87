"""`kidsql train --model tiny:8m --data DIR --out DIR [...]`: fine-tune a teacher with SFT.

The same engine as `kidsql distill` with method "sft" and no teacher; `--model`/`--out` name the student and
the output folder, and every other `DistillConfig` option (learning rate, epochs, LoRA, ...) is available.
"""

from __future__ import annotations

import argparse

_FIXED = ("method", "teacher", "student", "output_dir")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kidsql.distill.config import METHOD_OVERRIDES, add_config_arguments

    parser.add_argument("--model", help="model to fine-tune: a folder, a hub id, or tiny:<1m|3m|4m|8m|cfg.yaml>")
    parser.add_argument("--out", help="output folder (checkpoints, final/ model, train_result.json)")
    add_config_arguments(parser, skip=_FIXED + METHOD_OVERRIDES)


def run(args: argparse.Namespace) -> int:
    from kidsql.commands.distill import print_result
    from kidsql.distill.config import given_options, load_config
    from kidsql.distill.trainer import run_distill
    from kidsql.errors import KidsqlError
    from kidsql.validate import writable_folder

    options = given_options(args)
    options.update({k: v for k, v in (("student", args.model), ("output_dir", args.out)) if v})
    config = load_config(args.config, **options, method="sft")  # train is SFT by definition, whatever the YAML says
    if config.teacher:
        raise KidsqlError(f"{args.config}: `kidsql train` uses no teacher; drop `teacher:` or use `kidsql distill`")
    if not config.student:
        raise KidsqlError("--model is required: a folder, a hub id or tiny:<size>")
    writable_folder(config.output_dir, "--out")
    print_result(run_distill(config))
    return 0
