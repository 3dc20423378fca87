"""`kidsql evaluate`: read gold and predictions in the usual Spider/BIRD/JSONL formats, then `kidsql.evaluate`.

File formats accepted (chosen by suffix, else by the first character):
* gold: Spider's `dev_gold.sql` (`SQL<TAB>db_id` per line), a Spider/BIRD questions JSON list (`query` or `SQL`,
  `db_id`), or JSONL with `sql` and `db_id`.
* predictions: one SQL per line (a trailing `<TAB>db_id` or BIRD's `<TAB>----- bird -----<TAB>db_id` is
  dropped; an empty line is an empty prediction, so alignment with the gold is kept; trailing empty lines at
  the end of the file are ignored), a JSON list of strings, BIRD's `{"0": "SQL\\t----- bird -----\\tdb"}`
  object, or JSONL with `sql`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from kidsql.data.types import Example
from kidsql.errors import KidsqlError

_DB_ID = re.compile(r"^[\w.-]+$")
_BIRD_SEP = "\t----- bird -----\t"


def _read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KidsqlError(f"{what} file not found: {path}; check the path") from None
    except UnicodeDecodeError as err:
        raise KidsqlError(f"{path}: not UTF-8 text (byte {err.start}); re-save it as UTF-8") from None
    except OSError as err:
        raise KidsqlError(f"cannot read {what} file {path}: {err.strerror}; check the path and permissions") from None


def _loads(text: str, path: Path, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {line}" if line is not None else f"line {err.lineno} column {err.colno}"
        raise KidsqlError(f"{path}: malformed JSON at {where}: {err.msg}; fix the file") from None


def _is_json(path: Path, text: str) -> bool:
    return path.suffix.lower() == ".json" or (path.suffix.lower() != ".jsonl" and text.lstrip()[:1] == "[")


def _is_jsonl(path: Path, text: str) -> bool:
    return path.suffix.lower() == ".jsonl" or text.lstrip()[:1] == "{"


def _jsonl(text: str, path: Path) -> list[tuple[int, Any]]:
    return [(n, _loads(line, path, n)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _gold_record(rec: Any, path: Path, where: str, i: int) -> Example:
    if not isinstance(rec, dict):
        raise KidsqlError(f"{path}: {where} is not an object; each gold entry needs 'query'/'SQL'/'sql' and 'db_id'")
    sql = next((rec[k] for k in ("query", "SQL", "sql") if isinstance(rec.get(k), str)), None)
    if sql is None or not isinstance(rec.get("db_id"), str):
        raise KidsqlError(f"{path}: {where} lacks 'query'/'SQL'/'sql' or 'db_id'; add them")
    return Example(db_id=rec["db_id"], question=str(rec.get("question", "")), sql=sql, id=str(rec.get("id", i)))


def read_gold(path: Path) -> list[Example]:
    """Gold examples from `dev_gold.sql`-style TSV, a Spider/BIRD JSON list, or JSONL."""
    path = Path(path)
    text = _read_text(path, "gold")
    if _is_json(path, text):
        data = _loads(text, path)
        if not isinstance(data, list):
            raise KidsqlError(f"{path}: expected a JSON list of examples; give Spider's dev.json or BIRD's dev.json")
        return [_gold_record(r, path, f"entry {i}", i) for i, r in enumerate(data)]
    if _is_jsonl(path, text):
        return [_gold_record(r, path, f"line {n}", n - 1) for n, r in _jsonl(text, path)]
    golds = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        sql, sep, db_id = line.rstrip("\r").rpartition("\t")
        if not sep or not _DB_ID.match(db_id.strip()):
            raise KidsqlError(f"{path}: line {n} is not 'SQL<TAB>db_id'; use Spider's dev_gold.sql format")
        golds.append(Example(db_id=db_id.strip(), question="", sql=sql.strip(), id=str(len(golds))))
    return golds


def _strip_suffix(line: str) -> str:
    if _BIRD_SEP in line:
        return line.split(_BIRD_SEP, 1)[0].strip()
    head, sep, tail = line.rpartition("\t")
    if sep and _DB_ID.match(tail.strip()):
        return head.strip()
    return line.strip()


def _pred_kind(path: Path, text: str) -> str:
    suffix, first = path.suffix.lower(), text.lstrip()[:1]
    if suffix in (".json", ".jsonl"):
        return suffix[1:]
    if first == "[":
        return "json"
    if first == "{":  # one object (BIRD's) or one per line
        try:
            json.loads(text)
            return "json"
        except json.JSONDecodeError:
            return "jsonl"
    return "lines"


def read_predictions(path: Path) -> list[str]:
    """Predicted SQL strings, in gold order, from a line file, a JSON list/BIRD object, or JSONL."""
    path = Path(path)
    text = _read_text(path, "prediction")
    kind = _pred_kind(path, text)
    if kind == "json":
        data = _loads(text, path)
        if isinstance(data, dict):  # BIRD: {"0": "SQL\t----- bird -----\tdb_id", ...}
            try:
                items = sorted(data.items(), key=lambda kv: int(kv[0]))
            except ValueError:
                raise KidsqlError(f"{path}: a JSON object of predictions needs integer keys (BIRD format)") from None
            data = [v for _, v in items]
        if not isinstance(data, list):
            raise KidsqlError(f"{path}: expected a JSON list of SQL strings")
        out = []
        for i, item in enumerate(data):
            if isinstance(item, dict) and isinstance(item.get("sql"), str):
                item = item["sql"]
            if not isinstance(item, str):
                raise KidsqlError(f"{path}: entry {i} is not a SQL string (or an object with 'sql'); fix the file")
            out.append(_strip_suffix(item))
        return out
    if kind == "jsonl":
        out = []
        for n, rec in _jsonl(text, path):
            if not isinstance(rec, dict) or not isinstance(rec.get("sql"), str):
                raise KidsqlError(f"{path}: line {n} has no 'sql' string; each JSONL line needs {{\"sql\": ...}}")
            out.append(rec["sql"].strip())
        return out
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [_strip_suffix(line) for line in lines]


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
