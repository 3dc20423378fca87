"""Read a `Schema` straight from a SQLite file, for databases that tables.json does not describe.

Spider-style tables.json files are hand-made and sometimes incomplete (a db_id missing, our own JSONL sets have
none at all), but the SQLite file always knows its tables, declared types, primary keys and foreign keys.
The file is opened read-only through a URI so that inspecting a benchmark can never modify it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kidsql.data.types import Column, ForeignKey, Schema, Table
from kidsql.errors import KidsqlError


def connect_readonly(db_path: Path) -> sqlite3.Connection:
    """Open `db_path` read-only (mode=ro), so a benchmark file is never created, locked for writing or changed."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise KidsqlError(f"{db_path}: SQLite database not found; check the benchmark's database folder")
    uri = db_path.resolve().as_uri() + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, check_same_thread=False)
        con.text_factory = lambda b: b.decode("utf-8", errors="replace")
    except sqlite3.Error as err:
        raise KidsqlError(f"{db_path}: cannot open as SQLite ({err}); replace the file with a valid database")
    return con


def spider_column_type(declared: str) -> str:
    """A declared SQLite type in Spider's `column_types` vocabulary (text, number, time, boolean, others), by
    the substring rules of Spider's own tables.json script: what models trained on Spider-layout data saw."""
    t = declared.lower()
    if not t or any(k in t for k in ("char", "text", "var", "clob")):
        return "text"
    if any(k in t for k in ("int", "numeric", "decimal", "number", "real", "double", "float")):
        return "number"
    if any(k in t for k in ("date", "time", "year")):
        return "time"
    return "boolean" if "bool" in t else "others"


def quote_ident(name: str) -> str:
    """SQL-quote an identifier: German Spider has columns named `alter`, a keyword, so always quote."""
    return '"' + name.replace('"', '""') + '"'


def read_schema(db_path: Path, db_id: str) -> Schema:
    """Tables (in file order), columns with declared types, primary keys and foreign keys of one database."""
    con = connect_readonly(db_path)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
        ]
        tables: list[Table] = []
        fks: list[ForeignKey] = []
        pk_of: dict[str, list[str]] = {}
        for name in names:
            info = con.execute(f"PRAGMA table_info({quote_ident(name)})").fetchall()
            # table_info rows: cid, name, type, notnull, dflt_value, pk (1-based position in the key, 0 if none)
            cols = [Column(table=name, name=r[1], type=(r[2] or "").lower(), primary_key=r[5] > 0) for r in info]
            pk_of[name.lower()] = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5] > 0]
            tables.append(Table(name=name, columns=cols))
        by_lower = {t.name.lower(): t.name for t in tables}
        for name in names:
            # SQLite numbers a table's foreign keys last-declared first: id descending is declaration order
            rows = sorted(con.execute(f"PRAGMA foreign_key_list({quote_ident(name)})").fetchall(),
                          key=lambda r: (-r[0], r[1]))
            # rows: id, seq, table, from, to, on_update, on_delete, match; `to` is NULL when it means the pk
            for r in rows:
                ref_table = by_lower.get(str(r[2]).lower(), r[2])
                ref_col = r[4]
                if ref_col is None:
                    ref_pk = pk_of.get(str(r[2]).lower(), [])
                    if r[1] >= len(ref_pk):
                        continue
                    ref_col = ref_pk[r[1]]
                fks.append(ForeignKey(table=name, column=r[3], ref_table=ref_table, ref_column=ref_col))
    except sqlite3.DatabaseError as err:
        raise KidsqlError(f"{db_path}: cannot read the schema ({err}); replace the file with a valid database")
    finally:
        con.close()
    return Schema(db_id=db_id, tables=tables, foreign_keys=fks)


def schema_sql(db_path: Path, table: str | None = None) -> list[str]:
    """The CREATE statements of a database's tables, views and indexes (of one table when `table` is given), as
    the sqlite3 shell's `.schema` prints them; read-only."""
    con = connect_readonly(db_path)
    try:
        rows = con.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "AND (? IS NULL OR lower(tbl_name) = lower(?)) ORDER BY rowid", (table, table)).fetchall()
    except sqlite3.DatabaseError as err:
        raise KidsqlError(f"{db_path}: cannot read the schema ({err}); replace the file with a valid database")
    finally:
        con.close()
    return [r[0].strip() + ";" for r in rows]
