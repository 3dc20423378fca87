"""kidsql's default verdicts equal the official test-suite script's, row by row, on mutated spider-de dev gold.

The official script (`../shared/tools/test-suite-sql-eval`, run in place, never copied) judges the same rows
through `benchmarks/official_eval.py`, which follows its `evaluate()` step by step. Every row where it gives a
verdict must get the same EX, TS, EM and hardness from kidsql. The full run (every mutation of every gold) is
`python benchmarks/eval_speed.py --per-gold 100 --metric all`; here a seeded sample of about a thousand rows.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from official_eval import Official, mutated_rows, mutations, official_available  # noqa: E402

from kidsql.data.predictions import read_gold  # noqa: E402
from kidsql.data.spider import load_tables  # noqa: E402
from kidsql.data.types import Example  # noqa: E402
from kidsql.evaluate import evaluate  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def official(spider_de: Path) -> Official:
    reason = official_available()
    if reason:
        pytest.skip(reason)
    return Official(spider_de / "tables.json")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))


def _disagreements(rows, official_rows, verdicts, metric: str) -> tuple[int, list[str]]:
    checked, diffs = 0, []
    for (i, kind, pred), off, ours in zip(rows, official_rows, verdicts):
        want = getattr(off, metric)
        if want is None:
            continue
        checked += 1
        got = ours.hardness if metric == "hardness" else getattr(ours, metric)
        if got != want:
            diffs.append(f"gold {i} {kind}: official {want}, kidsql {got}: {pred[:200]}")
    return checked, diffs


def test_every_mutation_kind_is_produced():
    kinds = {k for k, _ in mutations("SELECT DISTINCT T1.a, count(T1.b) FROM t AS T1 JOIN u AS T2 ON T1.id = T2.id "
                                     "WHERE T1.b >= 3 AND T1.e > 1 AND T2.c = 'x' AND T1.d IN (SELECT d FROM v ORDER BY d "
                                     "LIMIT 2) GROUP BY T1.a ORDER BY count(*) DESC LIMIT 1")}
    for kind in ("distinct_drop", "distinct_in_count", "swap_columns", "order_desc_to_asc", "limit_value_0",
                 "limit_value_1", "limit_drop_1", "limit_add_nested_0", "agg_count", "op_>", "cond_drop_and",
                 "case_lower", "syntax_paren", "join_swap_on", "join_to_comma", "spaced_ops", "empty"):
        assert kind in kinds, kind


def test_ex_em_and_hardness_agree_with_the_official_script(spider_de: Path, official: Official):
    golds = read_gold(spider_de / "dev_gold.sql")[::3]  # every third gold: all 20 databases
    rows = mutated_rows(golds, seed=13, per_gold=3)
    db_dir = spider_de / "database"
    official_rows = [official.row(golds[i].sql, p, golds[i].db_id, db_dir / golds[i].db_id /
                                  f"{golds[i].db_id}.sqlite") for i, _, p in rows]
    report = evaluate([Example(db_id=golds[i].db_id, question="", sql=golds[i].sql) for i, _, _ in rows],
                      [p for _, _, p in rows], db_dir, metrics=("ex", "em"), schemas=load_tables(
                          spider_de / "tables.json"), show_progress=False)
    for metric, at_least in (("ex", 800), ("em", 1000), ("hardness", 1000)):
        checked, diffs = _disagreements(rows, official_rows, report.verdicts, metric)
        assert checked >= at_least, (metric, checked)
        assert not diffs, f"{metric}: {len(diffs)} of {checked} rows differ, e.g. {diffs[:5]}"
    # The mutations matter: both verdicts occur often for every metric.
    assert 200 < sum(bool(v.ex) for v in report.verdicts) < len(rows) - 200
    assert 200 < sum(bool(v.em) for v in report.verdicts) < len(rows) - 200


def _perturbed_copy(src: Path, dst: Path, keep_every: int) -> None:
    """A test-suite instance: the same schema with some rows gone, so coincidental matches break."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    conn = sqlite3.connect(dst)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        conn.execute(f'DELETE FROM "{table}" WHERE rowid % {keep_every} = 0')
    conn.commit()
    conn.close()


def test_ts_agrees_with_the_official_script(spider_de: Path, official: Official, tmp_path: Path):
    """A suite folder per database (the original and a copy with every third row gone); the official script
    judges TS over every .sqlite file in the folder, kidsql over --suite-dir."""
    all_golds = read_gold(spider_de / "dev_gold.sql")
    db_ids = sorted({g.db_id for g in all_golds})[:6]
    golds = [g for g in all_golds if g.db_id in db_ids][::2]
    suite = tmp_path / "suite"
    for db_id in db_ids:
        src = spider_de / "database" / db_id / f"{db_id}.sqlite"
        shutil.copy(src, (suite / db_id).mkdir(parents=True) or suite / db_id / f"{db_id}.sqlite")
        _perturbed_copy(src, suite / db_id / f"{db_id}_drop3.sqlite", 3)
    rows = mutated_rows(golds, seed=5, per_gold=3)
    official_rows = [official.row(golds[i].sql, p, golds[i].db_id,
                                  spider_de / "database" / golds[i].db_id / f"{golds[i].db_id}.sqlite",
                                  exec_db=suite / golds[i].db_id / f"{golds[i].db_id}.sqlite", want_em=False)
                     for i, _, p in rows]
    report = evaluate([Example(db_id=golds[i].db_id, question="", sql=golds[i].sql) for i, _, _ in rows],
                      [p for _, _, p in rows], spider_de / "database", suite_dir=suite, metrics=("ex", "ts"),
                      show_progress=False)
    official_ts = [type(o)(o.hardness, o.ex, o.em) for o in official_rows]
    for o in official_ts:
        o.ts = o.ex  # the official EX over a suite folder is its TS
    checked, diffs = _disagreements(rows, official_ts, report.verdicts, "ts")
    assert checked >= 100 and not diffs, f"{len(diffs)} of {checked} rows differ, e.g. {diffs[:5]}"
    # The suite is not idle: some predictions right on the original database are wrong on the perturbed copy.
    assert any(v.ex and not v.ts for v in report.verdicts)
