"""`kidsql evaluate`: gold and predictions read by `kidsql.data.predictions` (Spider/BIRD/JSONL formats), scored
by `kidsql.evaluate`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kidsql.data.predictions import read_gold, read_predictions
from kidsql.errors import KidsqlError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gold", type=Path, required=True, help="dev_gold.sql, a Spider/BIRD JSON, or JSONL")
    parser.add_argument("--pred", type=Path, required=True, help="one SQL per line, a JSON list, or JSONL")
    parser.add_argument("--db-dir", type=Path, required=True, help="folder holding <db_id>/<db_id>.sqlite")
    parser.add_argument("--tables", type=Path, help="tables.json for EM schemas (default: read the SQLite file)")
    parser.add_argument("--suite-dir", type=Path, help="test-suite databases, <db_id>/*.sqlite (for TS)")
    parser.add_argument("--metrics", default="ex,ts,em", help="comma list of ex, ts, em (default: all)")
    parser.add_argument("--semantics", choices=("spider", "bird"), default="spider",
                        help="spider: the official test-suite rules (default); bird: BIRD's set equality")
    parser.add_argument("--keep-distinct", action="store_true",
                        help="execute DISTINCT as written (the official script's --keep_distinct; default: "
                             "removed from both queries, as the leaderboard does)")
    parser.add_argument("--plug-value", action="store_true",
                        help="also try the gold's values in the prediction's value slots (official --plug_value)")
    parser.add_argument("--hardness", action="store_true",
                        help="break EX/TS down by Spider hardness without EM (EM computes it anyway)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N examples (N >= 1)")
    parser.add_argument("--out", type=Path, help="write report.md and results.json into this folder")
    parser.add_argument("--force", action="store_true", help="replace a report already in --out")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds per query, finite and > 0 (default 5); a worker is replaced past its bound")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the gold-result cache")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def check_out_dir(out: Path, force: bool) -> None:
    """Before any work: `out` is (or can become) a writable folder, and holds no report unless `force`."""
    if out.exists() and not out.is_dir():
        raise KidsqlError(f"--out {out} is an existing file; give a folder for report.md and results.json")
    existing = [p.name for p in (out / "report.md", out / "results.json") if p.exists()]
    if existing and not force:
        raise KidsqlError(f"--out {out} already holds {' and '.join(existing)}; pass --force to replace them "
                          "or choose another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".kidsql-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise KidsqlError(f"--out {out} is not writable ({err.strerror}); choose a folder you can write") from None


def _check_options(args: argparse.Namespace) -> None:
    from kidsql.sql.sandbox import check_limits

    try:
        check_limits(args.timeout)
    except ValueError as err:
        raise KidsqlError(f"--timeout: {err}") from None
    if args.workers is not None and args.workers < 1:
        raise KidsqlError(f"--workers {args.workers}: give at least 1 (or leave it out for all cores)")
    if args.limit is not None and args.limit < 1:
        raise KidsqlError(f"--limit {args.limit}: give at least 1 (or leave it out for every example)")
    if not args.db_dir.is_dir():
        raise KidsqlError(f"database folder not found: {args.db_dir}; pass --db-dir <folder of <db_id>/<db_id>.sqlite>")
    if args.suite_dir is not None and not args.suite_dir.is_dir():
        raise KidsqlError(f"suite folder not found: {args.suite_dir}; pass the test-suite folder or drop --suite-dir")
    if args.tables is not None and not args.tables.is_file():
        what = "a folder" if args.tables.is_dir() else "not found"
        raise KidsqlError(f"--tables {args.tables} is {what}; give the tables.json file itself")


def run(args: argparse.Namespace) -> int:
    _check_options(args)
    if args.out is not None:
        check_out_dir(args.out, args.force)
    golds = read_gold(args.gold)
    preds = read_predictions(args.pred)
    if not golds:
        raise KidsqlError(f"{args.gold} holds no gold query; give a non-empty gold file")
    if len(preds) != len(golds):
        raise KidsqlError(
            f"{args.pred} has {len(preds)} predictions but {args.gold} has {len(golds)} gold queries; "
            "give exactly one prediction per gold query"
        )
    if args.limit is not None:
        golds, preds = golds[: args.limit], preds[: args.limit]
    schemas = None
    if args.tables is not None:
        from kidsql.data.spider import load_tables

        try:
            schemas = load_tables(args.tables)
        except UnicodeDecodeError:
            raise KidsqlError(f"--tables {args.tables} is not UTF-8 JSON; give Spider's tables.json") from None
    from kidsql.evaluate import evaluate

    report = evaluate(
        golds,
        preds,
        args.db_dir,
        suite_dir=args.suite_dir,
        metrics=tuple(args.metrics.split(",")),
        schemas=schemas,
        semantics=args.semantics,
        keep_distinct=args.keep_distinct,
        plug_value=args.plug_value,
        hardness=True if args.hardness else None,
        workers=args.workers,
        timeout_s=args.timeout,
        use_cache=not args.no_cache,
        show_progress=not args.quiet,
    )
    print(report.to_markdown(), end="")
    if args.out is not None:
        md, js = report.write(args.out)
        print(f"wrote {md} and {js}")
    return 0
