"""`kidsql data show|synth`: look at a benchmark before spending compute on it (`kidsql.data.summary`), or generate
the embedded one (`kidsql.data.synth`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kidsql.errors import KidsqlError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True)
    show = sub.add_parser("show", help="Counts, hardness mix and a sample prompt of a benchmark.")
    show.add_argument("bench_dir", type=Path, metavar="BENCH_DIR", help="benchmark folder (or a .jsonl file)")
    show.add_argument("--split", default="dev", help="split to describe (default: dev)")
    show.add_argument("--kind", default="auto", choices=["auto", "spider", "bird", "jsonl"])
    show.add_argument("--n", type=int, default=1, help="number of sample prompts to print (default: 1)")
    show.add_argument("--db-dir", type=Path, default=None, help="database folder, when not beside the data")
    show.add_argument("--no-evidence", action="store_true", help="drop BIRD evidence from the prompts")
    synth = sub.add_parser("synth", help="Generate the embedded synthetic benchmark.")
    synth.add_argument("--out", type=Path, required=True, help="output folder (must be empty unless --force)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", default="small", choices=["small", "cpu", "cpu-medium", "full"],
                       help="small: tests; cpu: in-domain, what a tiny model learns on a CPU (the demo's); "
                            "cpu-medium: cpu plus the medium shapes (longer SQL); full: Spider-like, cross-database")
    synth.add_argument("--force", action="store_true", help="write into a non-empty --out")


def _show(args: argparse.Namespace) -> int:
    from kidsql.data.summary import describe_benchmark

    print(describe_benchmark(args.bench_dir, args.split, kind=args.kind, use_evidence=not args.no_evidence,
                             db_dir=args.db_dir, samples=args.n))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from kidsql.validate import writable_folder

    out: Path = writable_folder(args.out, "--out")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise KidsqlError(f"--out {out}: folder is not empty; pass an empty folder or add --force")
    from kidsql.data.synth import generate_benchmark

    path = generate_benchmark(out, seed=args.seed, size=args.size)
    print(f"wrote {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    return _synth(args) if args.data_command == "synth" else _show(args)
