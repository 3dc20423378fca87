"""Spider-layout benchmarks (Spider, Spider-DK/-Realistic/-Syn, German Spider) and the tables.json format.

Layout: `<dir>/<split>.json` (a JSON list of {db_id, question, query, ...}), `<dir>/tables.json`,
`<dir>/database/<db_id>/<db_id>.sqlite`. Any `<split>.json` is a split (dev, train_spider, dev_syn, ...).
Spider ships its training set as two files; the split "train", when there is no `train.json`, is
`train_spider.json` followed by `train_others.json` (`TRAIN_PARTS`), as every Spider paper trains on both.
BIRD's `*_tables.json` uses the same schema format, so `load_tables` serves both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kidsql.data.types import Column, Example, ForeignKey, Schema, Table
from kidsql.errors import KidsqlError

# JSON files in a benchmark folder that are not splits.
NON_SPLIT_JSON = {"tables"}
# What the split "train" is in Spider as shipped (no train.json): these files, in this order, where present.
TRAIN_PARTS = ("train_spider", "train_others")


def read_json(path: Path) -> Any:
    """json.load with a one-line error naming the file and line, because a hand-edited split is a common failure."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise KidsqlError(f"{path}: file not found; check the benchmark folder") from None
    except json.JSONDecodeError as err:
        raise KidsqlError(
            f"{path}: malformed JSON at line {err.lineno}, column {err.colno} ({err.msg}); fix or re-download it"
        ) from None
    except UnicodeDecodeError as err:
        raise KidsqlError(f"{path}: not UTF-8 ({err.reason}); re-encode the file as UTF-8") from None


def require(record: dict, field: str, path: Path, index: int) -> Any:
    """A record's field, or an error naming the field, the record and the file."""
    if not isinstance(record, dict):
        raise KidsqlError(f"{path}: record {index} is not a JSON object; each example must be an object")
    if field not in record:
        raise KidsqlError(f"{path}: record {index} lacks the field {field!r}; add it to every example")
    return record[field]


def _primary_key_indices(raw: list) -> set[int]:
    """Spider lists pks as ints; composite keys (Spider 1.0 later versions, BIRD) appear as nested lists."""
    out: set[int] = set()
    for item in raw:
        if isinstance(item, list):
            out.update(int(i) for i in item)
        else:
            out.add(int(item))
    return out


def schema_from_entry(entry: dict, path: Path) -> Schema:
    """One tables.json entry -> Schema (column 0 is Spider's `*` pseudo-column and is skipped)."""
    try:
        db_id = entry["db_id"]
        table_names = entry["table_names_original"]
        naturals = entry.get("table_names") or table_names
        cols = entry["column_names_original"]
        natural_cols = entry.get("column_names") or cols
        types = entry.get("column_types") or ["text"] * len(cols)
    except (KeyError, TypeError) as err:
        raise KidsqlError(f"{path}: a schema entry lacks {err}; tables.json needs Spider's fields") from None
    pks = _primary_key_indices(entry.get("primary_keys", []))
    tables = [Table(name=n, natural=naturals[i] if i < len(naturals) else "") for i, n in enumerate(table_names)]
    by_index: dict[int, Column] = {}
    for i, (t_idx, name) in enumerate(cols):
        if t_idx < 0:
            continue
        natural = natural_cols[i][1] if i < len(natural_cols) else ""
        col = Column(
            table=table_names[t_idx],
            name=name,
            type=str(types[i] if i < len(types) else "text").lower(),
            primary_key=i in pks,
            natural=natural,
        )
        tables[t_idx].columns.append(col)
        by_index[i] = col
    fks = []
    for pair in entry.get("foreign_keys", []):
        src, dst = by_index.get(pair[0]), by_index.get(pair[1])
        if src is None or dst is None:
            continue
        fks.append(ForeignKey(table=src.table, column=src.name, ref_table=dst.table, ref_column=dst.name))
    return Schema(db_id=db_id, tables=tables, foreign_keys=fks)


def load_tables(path: Path) -> dict[str, Schema]:
    """Spider/BIRD tables.json -> {db_id: Schema}, keeping the file's order."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise KidsqlError(f"{path}: expected a JSON list of schemas; use Spider's tables.json format")
    return {s.db_id: s for s in (schema_from_entry(e, path) for e in data)}


def list_splits(bench_dir: Path) -> list[str]:
    """Split names present in a Spider folder: every `<split>.json` except tables.json and `*_tables.json`."""
    return sorted(
        p.stem
        for p in Path(bench_dir).glob("*.json")
        if p.stem not in NON_SPLIT_JSON and not p.stem.endswith("_tables")
    )


def read_examples(
    path: Path,
    split: str,
    *,
    sql_fields: tuple[str, ...] = ("query", "SQL", "sql"),
    id_field: str | None = None,
    use_evidence: bool = True,
) -> list[Example]:
    """Examples from a JSON list. The SQL field name differs by benchmark (Spider `query`, BIRD `SQL`)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise KidsqlError(f"{path}: expected a JSON list of examples; use the Spider/BIRD split format")
    out = []
    for i, rec in enumerate(data):
        db_id = require(rec, "db_id", path, i)
        question = require(rec, "question", path, i)
        field = next((f for f in sql_fields if f in rec), None)
        if field is None:
            raise KidsqlError(f"{path}: record {i} lacks the field {sql_fields[0]!r}; add the gold SQL to it")
        ident = rec.get(id_field) if id_field else None
        out.append(
            Example(
                db_id=str(db_id),
                question=str(question).strip(),
                sql=str(rec[field]).strip(),
                evidence=str(rec.get("evidence") or "").strip() if use_evidence else "",
                id=str(ident) if ident is not None else f"{split}-{i}",
            )
        )
    return out


def load_spider_split(bench_dir: Path, split: str) -> tuple[list[Example], dict[str, Schema], Path]:
    """(examples, schemas from tables.json (may be empty), database folder) of a Spider-layout split."""
    bench_dir = Path(bench_dir)
    split_file = bench_dir / f"{split}.json"
    parts = [bench_dir / f"{p}.json" for p in TRAIN_PARTS] if split == "train" and not split_file.is_file() else []
    parts = [p for p in parts if p.is_file()] or [split_file]
    if not parts[0].is_file():
        have = ", ".join(list_splits(bench_dir)) or "none"
        raise KidsqlError(f"{split_file}: split {split!r} not found; splits present: {have}")
    examples = [e for part in parts for e in read_examples(part, split if len(parts) == 1 else part.stem)]
    tables = bench_dir / "tables.json"
    schemas = load_tables(tables) if tables.is_file() else {}
    return examples, schemas, bench_dir / "database"
