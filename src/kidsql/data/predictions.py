"""Gold queries and predicted SQL: read from the files Spider, BIRD and kidsql write, and written one per line.

Formats (chosen by suffix, else by the first character):
* gold: Spider's `dev_gold.sql` (`SQL<TAB>db_id` per line), a Spider/BIRD questions JSON list (`query` or `SQL`,
  `db_id`), or JSONL with `sql` and `db_id`.
* predictions: one SQL per line (a trailing `<TAB>db_id` or BIRD's `<TAB>----- bird -----<TAB>db_id` is
  dropped; an empty line is an empty prediction, so alignment with the gold is kept; trailing empty lines at
  the end of the file are ignored), a JSON list of strings, BIRD's `{"0": "SQL\\t----- bird -----\\tdb"}`
  object, or JSONL with `sql`.

Written predictions are one query per line, so any evaluator pairs lines with gold by position: newlines inside a
prediction become spaces, and an empty prediction is written as `SELECT` (it fails to execute, as an empty one
would) because Spider's official evaluator skips blank lines and would shift every later prediction.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kidsql.data.types import Example
from kidsql.errors import KidsqlError
from kidsql.files import write_atomic

EMPTY_PLACEHOLDER = "SELECT"
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


def write_predictions(path: Path, sqls: list[str]) -> Path:
    """`sqls` one per line (Spider's prediction format), atomically; see the module docstring for why."""
    return write_atomic(path, "".join((" ".join(s.split()) or EMPTY_PLACEHOLDER) + "\n" for s in sqls))
