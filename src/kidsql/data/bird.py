"""BIRD-layout benchmarks: `<dir>/<split>.json`, `<dir>/<split>_tables.json`, `<dir>/<split>_databases/`.

Each example is {db_id, question, evidence, SQL, question_id}. `use_evidence=False` blanks the evidence hint,
which is how BIRD is reported "without knowledge". The per-table CSVs in
`<split>_databases/<db_id>/database_description/<table>.csv` give column descriptions; they become
`Column.comment` (best effort: the files are hand-made, in mixed encodings, and sometimes name columns loosely).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from kidsql.data.spider import load_tables, read_examples
from kidsql.data.types import Example, Schema
from kidsql.errors import KidsqlError


def list_splits(bench_dir: Path) -> list[str]:
    """Splits present in a BIRD folder: `<split>.json` files that are not `*_tables.json`."""
    return sorted(
        p.stem for p in Path(bench_dir).glob("*.json") if not p.stem.endswith("_tables") and p.stem != "tables"
    )


def is_bird_dir(bench_dir: Path, split: str) -> bool:
    """Per-split tables and databases (BIRD, and Spider's test release, which has the same shape)."""
    bench_dir = Path(bench_dir)
    return (bench_dir / f"{split}_tables.json").is_file() or (bench_dir / f"{split}_databases").is_dir()


def _read_csv_text(path: Path) -> str:
    """BIRD's description CSVs come as UTF-8 (with or without BOM) or Latin-1."""
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")


def read_column_descriptions(db_folder: Path) -> dict[tuple[str, str], str]:
    """{(table lower, column lower): description} from `database_description/*.csv`; empty when absent."""
    out: dict[tuple[str, str], str] = {}
    desc_dir = db_folder / "database_description"
    if not desc_dir.is_dir():
        return out
    for csv_path in sorted(desc_dir.glob("*.csv")):
        try:
            reader = csv.DictReader(io.StringIO(_read_csv_text(csv_path)))
            for row in reader:
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
                col = row.get("original_column_name", "")
                text = row.get("column_description") or row.get("column_name", "")
                value_desc = row.get("value_description", "")
                if value_desc and len(value_desc) <= 80:
                    text = f"{text} ; {value_desc}" if text else value_desc
                if col and text:
                    out[(csv_path.stem.strip().lower(), col.lower())] = " ".join(text.split())
        except (csv.Error, OSError):
            continue  # best effort: a broken description file only loses comments
    return out


def with_descriptions(schema: Schema, db_folder: Path) -> Schema:
    """Give `schema`'s columns BIRD's descriptions as comments (in place; Column is frozen, so replaced)."""
    desc = read_column_descriptions(db_folder)
    if not desc:
        return schema
    for table in schema.tables:
        table.columns = [
            dataclasses.replace(c, comment=desc.get((table.name.lower(), c.name.lower()), c.comment))
            for c in table.columns
        ]
    return schema


def load_bird_split(
    bench_dir: Path, split: str, *, use_evidence: bool = True
) -> tuple[list[Example], dict[str, Schema], Path]:
    """(examples, schemas from `<split>_tables.json` with descriptions, database folder) of a BIRD split."""
    bench_dir = Path(bench_dir)
    split_file = bench_dir / f"{split}.json"
    if not split_file.is_file():
        have = ", ".join(list_splits(bench_dir)) or "none"
        raise KidsqlError(f"{split_file}: split {split!r} not found; splits present: {have}")
    examples = read_examples(
        split_file, split, sql_fields=("SQL", "query", "sql"), id_field="question_id", use_evidence=use_evidence
    )
    db_dir = bench_dir / f"{split}_databases"
    if not db_dir.is_dir() and (bench_dir / f"{split}_database").is_dir():
        db_dir = bench_dir / f"{split}_database"  # Spider's test release: test_tables.json + test_database/
    tables = bench_dir / f"{split}_tables.json"
    schemas = load_tables(tables) if tables.is_file() else {}
    for db_id, schema in schemas.items():
        with_descriptions(schema, db_dir / db_id)
    return examples, schemas, db_dir
