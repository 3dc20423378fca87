"""Database contents: random but plausible rows for one instance of a domain, and the SQLite file they go in.

Instance 0 is the benchmark's database; instances 1..3 are test-suite databases (same schema, other rows) so
that a query that is right only by accident on one database is caught by TS accuracy.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path

from .domains import ADJ, COMPANY_SUFFIX, FIRST, LAST, NOUN, PLACE_SUFFIX, POOLS, PRODUCT_NOUN, ColumnDef, DomainDef

Rows = dict[str, list[dict[str, object]]]


def _label(kind: str, rng: random.Random) -> str:
    if kind == "person":
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if kind == "title":
        return f"{rng.choice(['The ', ''])}{rng.choice(ADJ)} {rng.choice(NOUN)}"
    if kind == "company":
        return f"{rng.choice(NOUN + LAST)} {rng.choice(COMPANY_SUFFIX)}"
    if kind == "team":
        return f"{rng.choice(POOLS['city'])} {rng.choice(NOUN)}s"
    if kind == "place":
        return f"{rng.choice(LAST + NOUN)} {rng.choice(PLACE_SUFFIX)}"
    return f"{rng.choice(ADJ)} {rng.choice(PRODUCT_NOUN)}"  # product


def _value(col: ColumnDef, rng: random.Random, categories: dict[str, list[str]]) -> object:
    if col.kind in ("int", "year"):
        return rng.randint(*col.range)
    if col.kind == "real":
        lo, hi = col.range
        return round(rng.uniform(lo, hi), 2)
    if col.kind == "date":
        lo, hi = col.range
        start = date(lo, 1, 1)
        return (start + timedelta(days=rng.randrange((date(hi, 12, 31) - start).days + 1))).isoformat()
    return rng.choice(categories[col.kind])


def make_rows(dom: DomainDef, rng: random.Random) -> Rows:
    """Rows for every table. Categorical columns use a per-instance subset of their pool, so that equality
    filters and GROUP BY find several rows per value rather than one."""
    categories = {k: rng.sample(v, min(len(v), rng.randint(3, 6))) for k, v in POOLS.items()}
    sizes = {t.name: rng.randint(15, 40) if t.is_junction else rng.randint(10, 28) for t in dom.tables}
    rows: Rows = {}
    for t in dom.tables:
        out: list[dict[str, object]] = []
        seen_labels: set[str] = set()
        seen_keys: set[tuple] = set()
        for i in range(sizes[t.name]):
            row: dict[str, object] = {}
            for c in t.columns:
                if c.kind == "id":
                    row[c.name] = i + 1
                elif c.kind == "fk":
                    row[c.name] = rng.randint(1, sizes[c.arg])
                elif c.role == "label":
                    for _ in range(50):  # labels are unique within a table: they identify a row in questions
                        v = _label(c.kind, rng)
                        if v not in seen_labels:
                            break
                    seen_labels.add(v)
                    row[c.name] = v
                else:
                    row[c.name] = _value(c, rng, categories)
            if t.is_junction:
                key = tuple(row[c.name] for c in t.columns if c.kind == "fk")
                if key in seen_keys:
                    continue
                seen_keys.add(key)
            out.append(row)
        rows[t.name] = out
    return rows


def ddl(dom: DomainDef) -> list[str]:
    """CREATE TABLE statements with declared types, primary keys and foreign keys."""
    stmts = []
    for t in dom.tables:
        parts = [f"{c.name} {c.sql_type}{' PRIMARY KEY' if c.kind == 'id' else ''}" for c in t.columns]
        if t.is_junction:
            parts.append(f"PRIMARY KEY ({', '.join(c.name for c in t.columns if c.kind == 'fk')})")
        for c in t.columns:
            if c.kind == "fk":
                ref = dom.table(c.arg).pk
                assert ref is not None, f"{dom.db_id}.{t.name}.{c.name} references a table without primary key"
                parts.append(f"FOREIGN KEY ({c.name}) REFERENCES {c.arg}({ref.name})")
        stmts.append(f"CREATE TABLE {t.name} (\n  " + ",\n  ".join(parts) + "\n)")
    return stmts


def write_sqlite(path: Path, dom: DomainDef, rows: Rows) -> None:
    """Write the database byte-for-byte reproducibly: built in memory with a fixed page size, then dumped as one
    image (no journal, no fsync per table, nothing time-dependent in SQLite's file format)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA page_size = 4096")
        with conn:
            for stmt in ddl(dom):
                conn.execute(stmt)
            for t in dom.tables:
                names = [c.name for c in t.columns]
                conn.executemany(
                    f"INSERT INTO {t.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                    [tuple(r[n] for n in names) for r in rows[t.name]],
                )
        image = conn.serialize()
    finally:
        conn.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image)
