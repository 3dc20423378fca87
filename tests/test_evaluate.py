"""`kidsql.evaluate` and `kidsql evaluate` end to end on hand-built databases, plus spider-de gold against itself."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from kidsql.cli import main
from kidsql.data.predictions import read_gold, read_predictions
from kidsql.data.types import Column, Example, Schema, Table
from kidsql.evaluate import evaluate, suite_instances


def make_db(path: Path, products: list[tuple[int, str, float]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    conn.executemany("INSERT INTO product VALUES (?, ?, ?)", products)
    conn.commit()
    conn.close()
    return path


PRODUCTS = [(1, "apfel", 2.0), (2, "birne", 3.5), (3, "kiwi", 12.0), (4, "mango", 15.0)]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("KIDSQL_CACHE", str(cache))
    return cache


@pytest.fixture()
def db_dir(tmp_path: Path) -> Path:
    make_db(tmp_path / "db" / "shop" / "shop.sqlite", PRODUCTS)
    return tmp_path / "db"


def ex(sql: str, hardness: str = "easy") -> Example:
    return Example(db_id="shop", question="", sql=sql, hardness=hardness)


# gold, prediction, expected verdict
CASES = [
    ("SELECT name, price FROM product WHERE price > 10", "SELECT price, name FROM product WHERE price >= 12", "ok"),
    ("SELECT name FROM product ORDER BY price DESC", "SELECT name FROM product ORDER BY price", "mismatch"),
    ("SELECT count(*) FROM product", "SELECT count(*) FROM produkt", "pred_error"),
    ("SELECT alter FROM product", "SELECT name FROM product", "gold_error"),
    ("SELECT name FROM product", "DROP TABLE product", "pred_error"),
    ("SELECT name FROM product WHERE id = 2", "SELECT name FROM product WHERE name = 'birne'", "ok"),
]


def run(db_dir: Path, **kw):
    golds = [ex(g, h) for (g, _, _), h in zip(CASES, ["easy", "medium", "hard", "extra", "easy", "medium"])]
    preds = [p for _, p, _ in CASES]
    kw.setdefault("metrics", ("ex", "ts"))
    return evaluate(golds, preds, db_dir, workers=kw.pop("workers", 1), show_progress=False, **kw)


def test_verdicts_and_summary(db_dir: Path):
    report = run(db_dir)
    assert [v.verdict for v in report.verdicts] == [c[2] for c in CASES]
    assert "denied" in report.verdicts[4].reason
    assert "alter" in report.verdicts[3].reason and report.verdicts[3].ex is None
    assert report.gold_errors == 1
    s = report.summary()
    # 5 scored examples (the gold error is excluded), 2 correct
    assert s["all"]["count"] == 6 and s["all"]["gold_errors"] == 1 and s["all"]["scored"] == 5
    assert s["all"]["ex"] == pytest.approx(40.0)
    assert s["easy"]["count"] == 2 and s["easy"]["ex"] == pytest.approx(50.0)
    assert s["medium"]["ex"] == pytest.approx(50.0)
    assert s["extra"]["scored"] == 0 and s["extra"]["ex"] is None
    assert s["all"]["em"] is None  # not asked for
    assert s["all"]["ts"] == s["all"]["ex"]  # no suite: TS falls back to the single database
    assert any("no suite dir" in n for n in report.notes)
    md = report.to_markdown()
    assert "| all | 6 | 1 | 40.0 | 40.0 | - |" in md
    data = json.loads(report.to_json())
    assert data["verdict_counts"] == {"ok": 2, "mismatch": 1, "pred_error": 2, "gold_error": 1}
    assert len(data["examples"]) == 6


def test_parallel_matches_sequential(db_dir: Path):
    seq = run(db_dir, use_cache=False)
    par = run(db_dir, use_cache=False, workers=2)
    assert [(v.verdict, v.ex, v.ts) for v in par.verdicts] == [(v.verdict, v.ex, v.ts) for v in seq.verdicts]


def test_gold_cache_second_run_executes_no_gold(db_dir: Path, private_cache: Path):
    first = run(db_dir)
    assert first.gold_executed == len(CASES) and first.gold_cache_hits == 0
    second = run(db_dir)
    assert second.gold_executed == 0 and second.gold_cache_hits == len(CASES)
    assert [v.verdict for v in second.verdicts] == [v.verdict for v in first.verdicts]
    assert list((private_cache / "gold_results").rglob("*.json"))
    # the database changes -> its cached results are stale and must not be used
    db = db_dir / "shop" / "shop.sqlite"
    make_db(db.with_name("new.sqlite"), PRODUCTS[:2]).replace(db)
    third = run(db_dir)
    assert third.gold_executed == len(CASES)
    no_cache = run(db_dir, use_cache=False)
    assert no_cache.gold_executed == len(CASES) and no_cache.gold_cache_hits == 0


def test_test_suite_catches_a_coincidental_match(tmp_path: Path, db_dir: Path):
    # gold "price > 10" and prediction "id >= 3" agree on the main database only
    other = [(1, "apfel", 20.0), (2, "birne", 3.5), (3, "kiwi", 1.0), (4, "mango", 15.0)]
    for layout in ("suite_a/database/shop", "suite_b/shop"):
        shutil.copy(db_dir / "shop" / "shop.sqlite", tmp_path / "tmp.sqlite")
        make_db(tmp_path / layout / "shop_2.sqlite", other)
        (tmp_path / "tmp.sqlite").replace(tmp_path / layout / "shop.sqlite")
    golds = [ex("SELECT name FROM product WHERE price > 10"), ex("SELECT count(*) FROM product")]
    preds = ["SELECT name FROM product WHERE id >= 3", "SELECT count(id) FROM product"]
    for suite in (tmp_path / "suite_a", tmp_path / "suite_b"):
        assert len(suite_instances(suite, "shop")) == 2
        report = evaluate(golds, preds, db_dir, suite_dir=suite, metrics=("ex", "ts"), workers=1,
                          show_progress=False)
        assert [v.ex for v in report.verdicts] == [True, True]
        assert [v.ts for v in report.verdicts] == [False, True]
        assert "shop_2.sqlite" in report.verdicts[0].reason
        assert report.summary()["all"]["ts"] == pytest.approx(50.0)
    report = evaluate(golds, preds, db_dir, suite_dir=tmp_path / "empty", metrics=("ts",), workers=1,
                      show_progress=False)
    assert any("fell back" in n for n in report.notes)


def test_exact_match_uses_the_schema(db_dir: Path):
    pytest.importorskip("kidsql.sql.exact_match")
    schema = Schema("shop", [Table("product", [Column("product", "id", "number", True),
                                               Column("product", "name"), Column("product", "price", "number")])])
    golds = [ex("SELECT name FROM product WHERE price > 10")] * 2
    preds = ["SELECT name FROM product WHERE price > 10", "SELECT name FROM product WHERE id >= 3"]
    report = evaluate(golds, preds, db_dir, metrics=("ex", "em"), schemas={"shop": schema}, workers=1,
                      show_progress=False)
    assert [v.em for v in report.verdicts] == [True, False]
    assert [v.ex for v in report.verdicts] == [True, True]


def test_hardness_is_filled_when_missing(db_dir: Path):
    report = evaluate([ex("SELECT count(*) FROM product", "")], ["SELECT 1"], db_dir, metrics=("ex",),
                      workers=1, show_progress=False)
    assert report.verdicts[0].hardness in ("easy", "medium", "hard", "extra", "unknown")


# ---------------------------------------------------------------- files and the CLI


def test_readers(tmp_path: Path):
    tsv = tmp_path / "gold.sql"
    tsv.write_text("SELECT 1\tshop\n\nSELECT name FROM product\tshop\n", encoding="utf-8")
    assert [(g.sql, g.db_id) for g in read_gold(tsv)] == [("SELECT 1", "shop"), ("SELECT name FROM product", "shop")]
    js = tmp_path / "dev.json"
    js.write_text(json.dumps([{"query": "SELECT 1", "db_id": "a", "question": "q"}, {"SQL": "SELECT 2", "db_id": "b"}]))
    assert [(g.sql, g.db_id, g.question) for g in read_gold(js)] == [("SELECT 1", "a", "q"), ("SELECT 2", "b", "")]
    jl = tmp_path / "gold.jsonl"
    jl.write_text('{"sql": "SELECT 3", "db_id": "c"}\n')
    assert [(g.sql, g.db_id) for g in read_gold(jl)] == [("SELECT 3", "c")]

    lines = tmp_path / "pred.txt"
    lines.write_text("SELECT 1\tshop\n\nSELECT 'a\tb'\n\n\n", encoding="utf-8")
    assert read_predictions(lines) == ["SELECT 1", "", "SELECT 'a\tb'"]  # middle blank kept, trailing dropped
    pj = tmp_path / "pred.json"
    pj.write_text(json.dumps(["SELECT 1", {"sql": "SELECT 2"}]))
    assert read_predictions(pj) == ["SELECT 1", "SELECT 2"]
    bird = tmp_path / "predict_dev.json"
    bird.write_text(json.dumps({"1": "SELECT 2\t----- bird -----\tb", "0": "SELECT 1\t----- bird -----\ta"}))
    assert read_predictions(bird) == ["SELECT 1", "SELECT 2"]
    pl = tmp_path / "pred.jsonl"
    pl.write_text('{"sql": "SELECT 1"}\n{"sql": "SELECT 2"}\n')
    assert read_predictions(pl) == ["SELECT 1", "SELECT 2"]


def cli_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(["evaluate", "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_cli_end_to_end_and_errors(tmp_path: Path, db_dir: Path, capsys: pytest.CaptureFixture):
    gold = tmp_path / "gold.sql"
    gold.write_text("".join(f"{g}\tshop\n" for g, _, _ in CASES), encoding="utf-8")
    pred = tmp_path / "pred.sql"
    pred.write_text("".join(f"{p}\n" for _, p, _ in CASES), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["evaluate", "--gold", str(gold), "--pred", str(pred), "--db-dir", str(db_dir), "--metrics", "ex,ts",
                 "--out", str(out), "--workers", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| all | 6 | 1 |" in printed
    assert (out / "report.md").read_text(encoding="utf-8").startswith("| hardness |")
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [e["verdict"] for e in results["examples"]] == [c[2] for c in CASES]

    short = tmp_path / "short.sql"
    short.write_text("SELECT 1\n")
    err = cli_error(capsys, ["--gold", str(gold), "--pred", str(short), "--db-dir", str(db_dir)])
    assert "1 predictions" in err and "6 gold" in err and str(short) in err

    other = tmp_path / "other.sql"
    other.write_text("SELECT 1\tnowhere\n")
    err = cli_error(capsys, ["--gold", str(other), "--pred", str(short), "--db-dir", str(db_dir)])
    assert "'nowhere'" in err and str(db_dir / "nowhere" / "nowhere.sqlite") in err

    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"query": "SELECT 1", "db_id": "shop"},\n  {"query": }\n]')
    err = cli_error(capsys, ["--gold", str(bad), "--pred", str(short), "--db-dir", str(db_dir)])
    assert str(bad) in err and "line 3" in err

    missing = tmp_path / "missing.sql"
    err = cli_error(capsys, ["--gold", str(missing), "--pred", str(short), "--db-dir", str(db_dir)])
    assert str(missing) in err and "not found" in err

    err = cli_error(capsys, ["--gold", str(gold), "--pred", str(pred), "--db-dir", str(db_dir), "--metrics", "ex,bleu"])
    assert "bleu" in err


@pytest.mark.slow
def test_spider_de_gold_against_itself(spider_de: Path):
    golds = read_gold(spider_de / "dev_gold.sql")
    assert len(golds) == 1030
    report = evaluate(golds, [g.sql for g in golds], spider_de / "database", metrics=("ex",), workers=2,
                      use_cache=False, show_progress=False)
    assert report.gold_errors == 52
    assert all("alter" in v.reason for v in report.verdicts if v.verdict == "gold_error")
    counts = report.verdict_counts()
    assert counts["ok"] == len(golds) - 52 and counts["mismatch"] == 0 and counts["pred_error"] == 0
    assert report.summary()["all"]["ex"] == pytest.approx(100.0)


def test_written_predictions_read_back_in_gold_order(tmp_path):
    """A multi-line query stays on one line and an empty one becomes `SELECT`, so line i is still example i."""
    from kidsql.data.predictions import write_predictions

    path = write_predictions(tmp_path / "p.sql", ["SELECT a\n  FROM t", "", "   ", "SELECT 1"])
    assert path.read_text(encoding="utf-8") == "SELECT a FROM t\nSELECT\nSELECT\nSELECT 1\n"
    assert read_predictions(path) == ["SELECT a FROM t", "SELECT", "SELECT", "SELECT 1"]
