"""`kidsql predict`: a trained model writes SQL for a benchmark split, one query per line (Spider's format,
`kidsql.data.predictions.write_predictions`).

Prompts and generation are `kidsql.predict.predict_examples`, the function the demo and the bench use too: the
model's saved training prompt options, or the defaults with a budget of its context minus `--max-new-tokens`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kidsql.data.predictions import EMPTY_PLACEHOLDER, write_predictions
from kidsql.errors import KidsqlError
from kidsql.guided import add_guided_arguments, guided_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder (save_pretrained or peft adapter) or hub id")
    parser.add_argument("--data", required=True, type=Path, help="benchmark folder (Spider/BIRD layout) or .jsonl")
    parser.add_argument("--split", default="dev", help="split to predict (default: dev)")
    parser.add_argument("--kind", default="auto", choices=["auto", "spider", "bird", "jsonl"])
    parser.add_argument("--out", type=Path, default=Path("preds.sql"), help="output file (default: preds.sql)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="only the first N examples")
    parser.add_argument("--no-evidence", action="store_true", help="leave BIRD's evidence hints out of prompts")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, else float32), float32, bfloat16, float16")
    add_guided_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from kidsql.validate import check_value, existing_input, writable_file

    for name, option, value in (("batch_size", "--batch-size", args.batch_size),
                                ("max_new_tokens", "--max-new-tokens", args.max_new_tokens),
                                ("limit", "--limit", args.limit)):
        check_value(name, value, option)
    guided = guided_from_args(args)
    out = writable_file(args.out, "--out", force=args.force)
    existing_input(args.data, "--data", "a benchmark folder (Spider/BIRD layout) or a .jsonl file")

    from kidsql.data.load import load_benchmark
    from kidsql.predict import predict_examples

    bench = load_benchmark(args.data, args.split, kind=args.kind, use_evidence=not args.no_evidence)
    examples = bench.examples[: args.limit] if args.limit is not None else bench.examples
    if not examples:
        raise KidsqlError(f"{args.data}: split {args.split!r} has no examples to predict; check --split/--limit")

    start = time.perf_counter()
    sqls = predict_examples(args.model, bench, examples, max_new_tokens=args.max_new_tokens,
                            batch_size=args.batch_size, dtype=args.dtype, guided=guided)
    seconds = time.perf_counter() - start

    write_predictions(out, sqls)
    empty = sum(not s.strip() for s in sqls)
    note = f"; {empty} empty written as {EMPTY_PLACEHOLDER!r}" if empty else ""
    print(f"wrote {len(sqls)} predictions for {bench.name} to {out} in {seconds:.1f}s{note}")
    return 0

