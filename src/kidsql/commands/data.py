"""`kidsql data show|synth`: look at a benchmark before spending compute on it, or generate the embedded one.

`show` prints plain Markdown (readable in a terminal, pasteable into a report): examples per split, database and
schema counts, the hardness mix of the chosen split, and sample prompts exactly as the models will see them.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from kidsql.errors import KidsqlError

HARDNESS_ORDER = ("easy", "medium", "hard", "extra")


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


def _hardness_mix(bench) -> Counter | None:
    """Counts per hardness level, or None while kidsql.sql.hardness does not exist."""
    try:
        from kidsql.sql.hardness import hardness
    except ImportError:
        return None
    mix: Counter = Counter()
    for ex in bench.examples:
        try:
            mix[hardness(ex.sql, bench.schemas.get(ex.db_id))] += 1
        except Exception:  # a gold query the parser rejects is counted, not fatal
            mix["unparsed"] += 1
    return mix


def _show(args: argparse.Namespace) -> int:
    from kidsql.data.load import detect_kind, list_splits, load_benchmark
    from kidsql.prompts import build_prompt

    kind = detect_kind(args.bench_dir, args.split) if args.kind == "auto" else args.kind
    bench = load_benchmark(
        args.bench_dir, args.split, kind=kind, use_evidence=not args.no_evidence, db_dir=args.db_dir
    )
    splits = list_splits(args.bench_dir, kind)
    n_db_files = sum(1 for _ in bench.db_dir.glob("*/*.sqlite")) if bench.db_dir.is_dir() else 0
    split_dbs = {e.db_id for e in bench.examples}
    missing = sorted(d for d in split_dbs if not bench.db_path(d).is_file())
    print(f"# {bench.name} ({kind})\n")
    print("| split | examples |\n|---|---|")
    for name, count in splits.items():
        print(f"| {name} | {count} |")
    print("\n| count | value |\n|---|---|")
    print(f"| examples in {args.split} | {len(bench.examples)} |")
    print(f"| databases used by {args.split} | {len(split_dbs)} |")
    print(f"| database files in {bench.db_dir} | {n_db_files} |")
    print(f"| schemas | {len(bench.schemas)} |")
    if bench.examples:
        print(f"| with evidence | {sum(1 for e in bench.examples if e.evidence)} |")
    if missing:
        print(f"\nwarning: {len(missing)} database(s) used by {args.split} are missing: {', '.join(missing)}")
    mix = _hardness_mix(bench)
    if mix is None:
        print("\nhardness: unavailable")
    else:
        print("\n| hardness | examples | share |\n|---|---|---|")
        total = sum(mix.values()) or 1
        for level in [*HARDNESS_ORDER, *sorted(set(mix) - set(HARDNESS_ORDER))]:
            if level in mix or level in HARDNESS_ORDER:
                print(f"| {level} | {mix[level]} | {100 * mix[level] / total:.1f}% |")
    for ex in bench.examples[: max(args.n, 0)]:
        db_path = bench.db_path(ex.db_id)
        prompt = build_prompt(ex, bench.schemas[ex.db_id], db_path if db_path.is_file() else None)
        print(f"\n## sample prompt: {ex.id} ({ex.db_id})\n\n```\n{prompt}\n```\ngold: `{ex.sql}`")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from kidsql.validate import writable_folder

    out: Path = writable_folder(args.out, "--out")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise KidsqlError(f"--out {out}: folder is not empty; pass an empty folder or add --force")
    try:
        from kidsql.data.synth import generate_benchmark
    except ImportError as err:
        raise KidsqlError(f"kidsql.data.synth: the benchmark generator is unavailable ({err}); reinstall kidsql")

    path = generate_benchmark(out, seed=args.seed, size=args.size)
    print(f"wrote {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    return _synth(args) if args.data_command == "synth" else _show(args)
