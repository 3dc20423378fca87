"""A worker's memory of query results answers exactly as a new sandboxed run would, and stays bounded."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from _tiny import write_tables
from kidsql.data.types import Example
from kidsql.evaluate import evaluate
from kidsql.sql.memo import ResultMemo, deterministic
from kidsql.sql.sandbox import Database, ExecResult


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return write_tables(tmp_path / "db" / "shop" / "shop.sqlite",
                        {"t (x INTEGER, y TEXT)": [(i % 7, "v" * (i % 5)) for i in range(60)]})


def _same(a: ExecResult, b: ExecResult) -> bool:
    return (a.ok, a.rows, a.error) == (b.ok, b.rows, b.error)


def test_recall_equals_a_new_run_under_every_row_cap(db: Path):
    """Random queries under random row caps, in random order: whatever the memo answers (it may decline) is
    what the sandbox answers for that query and cap; a reference connection reruns every one."""
    rng = random.Random(0)
    queries = [f"SELECT x, y FROM t WHERE x < {k}" for k in range(8)] + [
        "SELECT count(*) FROM t", "SELECT nosuch FROM t", "SELECT x FROM t GROUP BY x", "SELECT x FROM t, t AS u"]
    memo, runner, reference = ResultMemo(), Database(db), Database(db)
    answered = 0
    try:
        for _ in range(400):
            sql, cap = rng.choice(queries), rng.choice([1, 5, 9, 30, 60, 61, 100_000])
            recalled = memo.recall((db, sql), cap)
            if recalled is None:
                memo.remember((db, sql), sql, runner.run(sql, max_rows=cap))
            else:
                answered += 1
                assert _same(recalled, reference.run(sql, max_rows=cap)), (sql, cap)
    finally:
        runner.close()
        reference.close()
    assert answered > 300  # the memo answers most repeats, so the check above is not vacuous


def test_only_deterministic_and_lasting_results_are_kept():
    assert not deterministic("SELECT random()")
    assert not deterministic("SELECT a FROM t WHERE d < DATE('now')")
    assert not deterministic("select julianday() - julianday(d) from t")
    assert not deterministic("SELECT CURRENT_TIMESTAMP")
    assert not deterministic("SELECT changes()")
    assert deterministic("SELECT T1.modell FROM autos_daten AS T1 WHERE update_date > 3")  # names, not functions
    memo = ResultMemo()
    for i, error in enumerate(["timeout after 5 s", "memory cap exceeded (out of memory)", "byte cap 9 exceeded",
                               "cannot open database x: y", "database not found: x"]):
        memo.remember(i, "SELECT 1", ExecResult(False, None, [], error))
    memo.remember("r", "SELECT random()", ExecResult(True, [(7,)], ["r"], nbytes=8))
    assert len(memo) == 0
    memo.remember("e", "SELECT nosuch FROM t", ExecResult(False, None, [], "OperationalError: no such column"))
    assert memo.recall("e", 5).error == "OperationalError: no such column"


def test_memory_stays_under_its_bounds():
    memo = ResultMemo(max_bytes=1000, max_entries=5)
    for i in range(50):
        memo.remember(i, "SELECT 1", ExecResult(True, [(i,)] * 10, ["x"], nbytes=80 + i))
        assert len(memo) <= 5 and memo._bytes <= 1000 and memo._bytes == sum(r.nbytes for r in memo._results.values())
    assert memo.recall(49, 100) is not None and memo.recall(0, 100) is None  # the oldest went first
    memo.remember("big", "SELECT 1", ExecResult(True, [(0,)], ["x"], nbytes=251))  # over a quarter: not kept
    assert memo.recall("big", 100) is None


def test_a_nondeterministic_gold_is_run_again_for_its_prediction(db: Path):
    """The official script runs gold and prediction separately, so `SELECT random()` against itself is wrong
    (two draws); a remembered gold result would make it right."""
    report = evaluate([Example(db_id="shop", question="", sql="SELECT random()")] * 2,
                      ["SELECT random()", "SELECT count(*) FROM t"], db.parent.parent, metrics=("ex",),
                      workers=1, show_progress=False, use_cache=False)
    assert [v.ex for v in report.verdicts] == [False, False]
    same = evaluate([Example(db_id="shop", question="", sql="SELECT DISTINCT x FROM t ORDER BY x")] * 3,
                    ["SELECT x FROM t ORDER BY x", "SELECT DISTINCT x FROM t ORDER BY x", "SELECT x FROM t"],
                    db.parent.parent, metrics=("ex",), workers=1, show_progress=False, use_cache=False)
    assert [v.ex for v in same.verdicts] == [True, True, False]  # DISTINCT removed: 60 rows; unordered: wrong
