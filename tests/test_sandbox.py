"""The sandbox: hostile SQL is refused with a reason, the database never changes, no file appears, time is bounded."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from kidsql.sql.sandbox import _immutable_safe, execute

N_ROWS = 300


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    """A small database in a folder whose name needs URI quoting (space, non-ASCII, '#', '?')."""
    folder = tmp_path / "dbs ä #x?y"
    folder.mkdir()
    path = folder / "shop.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(N_ROWS)])
    conn.execute("CREATE TABLE u (s TEXT)")
    conn.execute("INSERT INTO u VALUES (CAST(x'ff41' AS TEXT))")  # invalid UTF-8 stored as text
    conn.commit()
    conn.close()
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root with its SHA-256: catches changed bytes and new or deleted files alike."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_reads_work(db: Path):
    res = execute(db, "SELECT count(*), sum(x) FROM t")
    assert res.ok and res.error is None
    assert res.rows == [(N_ROWS, N_ROWS * (N_ROWS - 1) // 2)]
    res = execute(db, "SELECT y, x FROM t WHERE x < 3 ORDER BY x DESC;")
    assert res.rows == [("v2", 2), ("v1", 1), ("v0", 0)] and res.columns == ["y", "x"]
    assert execute(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").rows == [("t",), ("u",)]
    assert [r[1] for r in execute(db, "PRAGMA table_info(t)").rows] == ["x", "y"]
    assert execute(db, "SELECT printf('%05.1f|%-3s|%%', 2.5, 'ab')").rows == [("002.5|ab |%",)]


def test_bad_utf8_is_dropped_not_raised(db: Path):
    """Invalid bytes are dropped, as the official evaluator's text_factory (errors="ignore") does."""
    assert execute(db, "SELECT s FROM u").rows == [("A",)]


def hostile(tmp_path: Path) -> list[tuple[str, str]]:
    """(query, fragment the reason must contain)."""
    return [
        ("INSERT INTO t VALUES (1000, 'x')", "denied: write to table t"),
        ("UPDATE t SET y = 'z'", "denied: write to table t"),
        ("DELETE FROM t", "denied: write to table t"),
        ("REPLACE INTO t VALUES (1, 'x')", "denied: write to table t"),
        ("INSERT OR IGNORE INTO t SELECT x + 1000, y FROM t", "denied: write"),
        ("DROP TABLE t", "denied"),
        ("CREATE TABLE z (a)", "denied"),
        ("CREATE TEMP TABLE z (a)", "denied"),
        ("CREATE INDEX i ON t (y)", "denied"),
        ("CREATE VIEW v AS SELECT 1", "denied"),
        ("ALTER TABLE t ADD COLUMN z", "denied"),
        ("ALTER TABLE t RENAME TO t2", "denied"),
        (f"ATTACH DATABASE '{tmp_path / 'attached.sqlite'}' AS a", "denied: attach"),
        (f"VACUUM INTO '{tmp_path / 'copy.sqlite'}'", "denied: VACUUM INTO"),
        ("VACUUM", "denied: VACUUM (it rewrites the database file)"),
        ("SELECT load_extension('/tmp/evil')", "load_extension"),
        ("PRAGMA journal_mode=DELETE", "denied: pragma journal_mode"),
        ("PRAGMA user_version=5", "denied: pragma user_version"),
        ("PRAGMA writable_schema=ON", "denied: pragma"),
        ("BEGIN IMMEDIATE", "denied: transaction"),
        ("SAVEPOINT s", "denied"),
        ("ANALYZE", "denied"),
        ("REINDEX", "not a query"),
        ("SELECT 1; DROP TABLE t", "multiple statements"),
        ("SELECT 1; SELECT 2", "multiple statements"),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", "timeout"),
        ("SELECT count(*) FROM t a, t b, t c, t d", "timeout"),
        ("SELECT a.x, b.y FROM t a, t b", "row cap"),
        ("SELECT zeroblob(2000000000)", "too big"),
        ("SELECT randomblob(2000000000)", "too big"),
        ("SELECT printf('%.*c', 2000000000, 'x')", "cap"),
        ("SELECT printf('%2000000000d', 1)", "cap"),
        ("SELECT replace(hex(zeroblob(1000000)), '0', hex(zeroblob(100000)))", "too big"),
        ("SELECT sum(length(randomblob(5000000))) FROM t a, t b", "timeout"),
        ("SELECT * FROM no_such_table", "no such table"),
        ("", "empty query"),
    ]


@pytest.mark.slow
def test_hostile_corpus_is_refused_and_changes_nothing(db: Path, tmp_path: Path):
    corpus = hostile(tmp_path)
    assert len(corpus) >= 20
    before = snapshot(tmp_path)
    t0 = time.monotonic()
    for sql, fragment in corpus:
        res = execute(db, sql, timeout_s=1.0, max_rows=10_000)
        assert not res.ok and res.rows is None, sql
        assert fragment in (res.error or ""), (sql, res.error)
        assert "\n" not in res.error
    assert time.monotonic() - t0 < 60  # catches a hang, not a speed claim
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "attached.sqlite").exists() and not (tmp_path / "copy.sqlite").exists()


def test_timeout_is_reported_and_bounded(db: Path):
    t0 = time.monotonic()
    res = execute(db, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r",
                  timeout_s=0.3)
    assert res.error == "timeout after 0.3 s"
    assert time.monotonic() - t0 < 3


def test_row_and_byte_caps(db: Path):
    assert execute(db, "SELECT x FROM t", max_rows=N_ROWS).ok
    res = execute(db, "SELECT x FROM t", max_rows=N_ROWS - 1)
    assert res.error == f"row cap {N_ROWS - 1} exceeded"
    assert execute(db, "SELECT y FROM t", max_bytes=100).error == "byte cap 100 exceeded"


def test_missing_database_is_an_error_not_a_new_file(tmp_path: Path):
    path = tmp_path / "nope.sqlite"
    res = execute(path, "SELECT 1")
    assert not res.ok and "database not found" in res.error
    assert not path.exists()


def test_wal_database_is_read_without_immutable(tmp_path: Path):
    """immutable=1 would ignore data still in the WAL; such files must use plain read-only mode and read it."""
    path = tmp_path / "wal.sqlite"
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (x)")
    writer.execute("INSERT INTO t VALUES (42)")
    writer.commit()  # still open: the row lives only in the -wal file
    try:
        assert not _immutable_safe(path)
        assert execute(path, "SELECT x FROM t").rows == [(42,)]
    finally:
        writer.close()


def test_rollback_database_is_immutable_safe(db: Path):
    assert _immutable_safe(db)
    journal = db.with_name(db.name + "-journal")
    journal.write_bytes(b"")
    assert not _immutable_safe(db)
