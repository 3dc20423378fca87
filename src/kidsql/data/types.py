"""The two types every other module speaks: a database `Schema` and a text-to-SQL `Example`.

They are plain dataclasses so that loaders (Spider, BIRD, JSONL, the embedded generator), prompts, the
evaluator and the trainer can all exchange them without knowing where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Column:
    """One column. `name` is the original (SQL) identifier; `natural` a human phrasing when the source has one."""

    table: str
    name: str
    type: str = "text"
    primary_key: bool = False
    comment: str = ""
    natural: str = ""


@dataclass(frozen=True)
class ForeignKey:
    """`table.column` references `ref_table.ref_column`."""

    table: str
    column: str
    ref_table: str
    ref_column: str


@dataclass
class Table:
    name: str
    columns: list[Column] = field(default_factory=list)
    natural: str = ""


@dataclass
class Schema:
    """A database schema. Table/column names are the originals, as they appear in SQL."""

    db_id: str
    tables: list[Table] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    def table(self, name: str) -> Table:
        low = name.lower()
        for t in self.tables:
            if t.name.lower() == low:
                return t
        raise KeyError(f"table {name!r} not in schema {self.db_id!r}")

    def columns(self) -> list[Column]:
        return [c for t in self.tables for c in t.columns]


@dataclass
class Example:
    """One question/SQL pair. `sql` is the gold query; `evidence` is BIRD's hint (empty elsewhere)."""

    db_id: str
    question: str
    sql: str
    evidence: str = ""
    id: str = ""
    hardness: str = ""  # filled by kidsql.sql.hardness when known


@dataclass
class Benchmark:
    """A split of a benchmark: its examples, the schemas of its databases, and where the SQLite files lie."""

    name: str
    examples: list[Example]
    schemas: dict[str, Schema]
    db_dir: Path
    db_layout: str = "spider"  # "spider": db_dir/<db_id>/<db_id>.sqlite (BIRD uses the same layout)

    def db_path(self, db_id: str) -> Path:
        return self.db_dir / db_id / f"{db_id}.sqlite"
