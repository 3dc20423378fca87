"""Benchmark loaders: real German Spider dev, hand-made BIRD and JSONL folders, and their one-line errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kidsql.data.load import detect_kind, list_splits, load_benchmark
from kidsql.data.spider import load_tables
from kidsql.data.sqlite_schema import read_schema
from kidsql.errors import KidsqlError

# --- real data: spider-de -----------------------------------------------------------------------------------


def test_spider_de_counts(spider_de: Path) -> None:
    bench = load_benchmark(spider_de, "dev")
    assert len(bench.examples) == 1030
    assert len(load_tables(spider_de / "tables.json")) == 164
    assert len(list((spider_de / "database").glob("*/*.sqlite"))) == 163
    assert len({e.db_id for e in bench.examples}) == 20
    assert [e.id for e in bench.examples[:3]] == ["dev-0", "dev-1", "dev-2"]
    assert len({e.id for e in bench.examples}) == 1030
    assert all(bench.db_path(e.db_id).is_file() for e in bench.examples)
    assert list_splits(spider_de) == {"dev": 1030}


def test_spider_de_german_identifiers_survive(spider_de: Path) -> None:
    bench = load_benchmark(spider_de, "dev")
    first = bench.examples[0]
    assert first.question == "Wie viele Sängerinnen und Sänger haben wir?"
    assert first.sql == "SELECT count(*) FROM sänger"
    schema = bench.schemas["concert_singer"]
    assert [t.name for t in schema.tables] == ["stadion", "sänger", "konzert", "sänger_im_konzert"]
    assert "jahr_der_veröffentlichung_des_liedes" in [c.name for c in schema.table("Sänger").columns]


def _shape(schema):
    tables = [(t.name.lower(), [c.name.lower() for c in t.columns]) for t in schema.tables]
    pks = {(c.table.lower(), c.name.lower()) for c in schema.columns() if c.primary_key}
    fks = {(f.table.lower(), f.column.lower(), f.ref_table.lower(), f.ref_column.lower()) for f in schema.foreign_keys}
    return tables, pks, fks


def test_schema_from_sqlite_matches_tables_json(spider_de: Path) -> None:
    bench = load_benchmark(spider_de, "dev")
    for db_id in sorted({e.db_id for e in bench.examples}):
        from_file = read_schema(bench.db_path(db_id), db_id)
        assert _shape(from_file) == _shape(bench.schemas[db_id]), db_id
    # composite key: both columns of sänger_im_konzert are primary key columns in both sources
    assert _shape(bench.schemas["concert_singer"])[1] >= {
        ("sänger_im_konzert", "konzert_id"),
        ("sänger_im_konzert", "sänger_id"),
    }


# --- hand-made folders --------------------------------------------------------------------------------------


def make_db(path: Path, tables: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript(tables)
    con.commit()
    con.close()
    return path


SHOP_SQL = """
CREATE TABLE kunde (kunde_id INTEGER, name TEXT, PRIMARY KEY (kunde_id));
CREATE TABLE bestellung (nr INTEGER, pos INTEGER, kunde INTEGER REFERENCES kunde, betrag REAL,
                         PRIMARY KEY (nr, pos));
INSERT INTO kunde VALUES (1, 'Jörg');
"""

SHOP_TABLES = {
    "db_id": "shop",
    "table_names_original": ["kunde", "bestellung"],
    "table_names": ["Kunde", "Bestellung"],
    "column_names_original": [
        [-1, "*"], [0, "kunde_id"], [0, "name"], [1, "nr"], [1, "pos"], [1, "kunde"], [1, "betrag"]
    ],
    "column_names": [[-1, "*"], [0, "kunde id"], [0, "name"], [1, "nr"], [1, "pos"], [1, "kunde"], [1, "betrag"]],
    "column_types": ["text", "number", "text", "number", "number", "number", "number"],
    "primary_keys": [1, [3, 4]],
    "foreign_keys": [[5, 1]],
}


def test_tables_json_composite_keys_naturals_and_fks(tmp_path: Path) -> None:
    (tmp_path / "tables.json").write_text(json.dumps([SHOP_TABLES]), encoding="utf-8")
    schema = load_tables(tmp_path / "tables.json")["shop"]
    assert [c.name for c in schema.columns() if c.primary_key] == ["kunde_id", "nr", "pos"]
    assert schema.table("kunde").natural == "Kunde"
    assert schema.columns()[0].natural == "kunde id" and schema.columns()[0].type == "number"
    assert [(f.table, f.column, f.ref_table, f.ref_column) for f in schema.foreign_keys] == [
        ("bestellung", "kunde", "kunde", "kunde_id")
    ]
    # the SQLite file says the same (the FK names no column: it means the referenced table's primary key)
    from_file = read_schema(make_db(tmp_path / "shop.sqlite", SHOP_SQL), "shop")
    assert _shape(from_file) == _shape(schema)
    assert [c.type for c in from_file.columns()] == ["integer", "text", "integer", "integer", "integer", "real"]


def bird_folder(root: Path) -> Path:
    rows = [
        {"question_id": 7, "db_id": "shop", "question": "Wie heißt Kunde 1?", "evidence": "Kunde 1 = kunde_id 1",
         "SQL": "SELECT name FROM kunde WHERE kunde_id = 1"},
        {"question_id": 9, "db_id": "extra", "question": "Wie viele?", "evidence": "",
         "SQL": "SELECT count(*) FROM t"},
    ]
    (root / "dev.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    (root / "dev_tables.json").write_text(json.dumps([SHOP_TABLES]), encoding="utf-8")
    shop = make_db(root / "dev_databases" / "shop" / "shop.sqlite", SHOP_SQL)
    desc = shop.parent / "database_description"
    desc.mkdir()
    (desc / "kunde.csv").write_bytes(
        "original_column_name,column_name,column_description,data_format,value_description\n"
        "kunde_id,kunde id,Kennung des Kunden,integer,\n"
        "name,,Name für Rechnungen,text,\n".encode("latin-1")
    )
    make_db(root / "dev_databases" / "extra" / "extra.sqlite", "CREATE TABLE t (a TEXT);")
    return root


def test_bird_loader_with_and_without_evidence(tmp_path: Path) -> None:
    root = bird_folder(tmp_path)
    assert detect_kind(root) == "bird"
    bench = load_benchmark(root, "dev")
    assert [e.id for e in bench.examples] == ["7", "9"]
    assert bench.examples[0].evidence == "Kunde 1 = kunde_id 1"
    assert bench.examples[0].sql == "SELECT name FROM kunde WHERE kunde_id = 1"
    assert bench.db_path("shop") == root / "dev_databases" / "shop" / "shop.sqlite"
    assert [c.comment for c in bench.schemas["shop"].table("kunde").columns] == [
        "Kennung des Kunden",
        "Name für Rechnungen",  # Latin-1 file decoded
    ]
    assert [t.name for t in bench.schemas["extra"].tables] == ["t"]  # not in dev_tables.json: read from SQLite
    plain = load_benchmark(root, "dev", use_evidence=False)
    assert [e.evidence for e in plain.examples] == ["", ""]


def jsonl_folder(root: Path) -> Path:
    lines = [
        json.dumps({"db_id": "shop", "question": "Wer ist Jörg?", "sql": "SELECT * FROM kunde"}, ensure_ascii=False),
        "",
        json.dumps({"db_id": "shop", "question": "Q2", "sql": "SELECT 1", "evidence": "hint", "id": "own-id"}),
    ]
    (root / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    make_db(root / "database" / "shop" / "shop.sqlite", SHOP_SQL)
    return root


def test_jsonl_loader(tmp_path: Path) -> None:
    root = jsonl_folder(tmp_path)
    assert detect_kind(root, "test") == "jsonl"
    bench = load_benchmark(root, "test")
    assert [(e.id, e.evidence) for e in bench.examples] == [("test-0", ""), ("own-id", "hint")]
    assert bench.examples[0].question == "Wer ist Jörg?"
    assert [t.name for t in bench.schemas["shop"].tables] == ["kunde", "bestellung"]  # no tables.json: SQLite
    assert load_benchmark(root, "test", use_evidence=False).examples[1].evidence == ""
    # the file itself, with the databases elsewhere
    moved = tmp_path / "elsewhere"
    (root / "database").rename(moved)
    direct = load_benchmark(root / "test.jsonl", db_dir=moved)
    assert direct.name == "test/test" and direct.db_path("shop") == moved / "shop" / "shop.sqlite"
    assert list_splits(root) == {"test": 2}


# --- errors -------------------------------------------------------------------------------------------------


def test_missing_split_lists_the_existing_ones(tmp_path: Path) -> None:
    root = bird_folder(tmp_path)
    with pytest.raises(KidsqlError, match=r"train\.json: split 'train' not found; splits present: dev$"):
        load_benchmark(root, "train", kind="bird")
    (tmp_path / "tables.json").write_text("[]")
    (tmp_path / "dev_syn.json").write_text("[]")
    with pytest.raises(KidsqlError, match="splits present: dev, dev_syn"):
        load_benchmark(tmp_path, "test", kind="spider")


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "dev.json").write_text('[\n {"db_id": "a",\n  "question": oops}\n]', encoding="utf-8")
    with pytest.raises(KidsqlError, match=r"dev\.json: malformed JSON at line 3"):
        load_benchmark(tmp_path, "dev", kind="spider")
    (tmp_path / "x.jsonl").write_text('{"db_id": "a", "question": "q", "sql": "s"}\n{bad\n')
    with pytest.raises(KidsqlError, match=r"x\.jsonl: malformed JSON at line 2"):
        load_benchmark(tmp_path / "x.jsonl")


def test_unknown_db_id_names_db_and_path(tmp_path: Path) -> None:
    root = jsonl_folder(tmp_path)
    with open(root / "test.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"db_id": "ghost", "question": "q", "sql": "s"}) + "\n")
    with pytest.raises(KidsqlError, match=r"example test-2 uses unknown db_id 'ghost'.*ghost\.sqlite"):
        load_benchmark(root, "test")


def test_missing_field_names_field_and_file(tmp_path: Path) -> None:
    (tmp_path / "dev.json").write_text(json.dumps([{"db_id": "a", "query": "s"}]))
    with pytest.raises(KidsqlError, match=r"dev\.json: record 0 lacks the field 'question'"):
        load_benchmark(tmp_path, "dev", kind="spider")
    (tmp_path / "dev.json").write_text(json.dumps([{"db_id": "a", "question": "q"}]))
    with pytest.raises(KidsqlError, match=r"dev\.json: record 0 lacks the field 'query'"):
        load_benchmark(tmp_path, "dev", kind="spider")
    (tmp_path / "t.jsonl").write_text(json.dumps({"db_id": "a", "question": "q"}) + "\n")
    with pytest.raises(KidsqlError, match=r"t\.jsonl: line 1 lacks the field 'sql'"):
        load_benchmark(tmp_path / "t.jsonl")


def test_not_a_benchmark_and_bad_kind(tmp_path: Path) -> None:
    with pytest.raises(KidsqlError, match="not a benchmark folder"):
        load_benchmark(tmp_path)
    with pytest.raises(KidsqlError, match="--kind 'csv' is unknown"):
        load_benchmark(tmp_path, kind="csv")
    with pytest.raises(KidsqlError, match="not found"):
        load_benchmark(tmp_path / "absent")


def test_spider_test_release_layout(tmp_path: Path) -> None:
    """Spider's test release keeps per-split tables and databases: test_tables.json + test_database/."""
    (tmp_path / "test.json").write_text(json.dumps([{"db_id": "shop", "question": "q", "query": "SELECT 1"}]))
    (tmp_path / "test_tables.json").write_text(json.dumps([SHOP_TABLES]))
    make_db(tmp_path / "test_database" / "shop" / "shop.sqlite", SHOP_SQL)
    bench = load_benchmark(tmp_path, "test")
    assert bench.examples[0].sql == "SELECT 1" and bench.examples[0].id == "test-0"
    assert bench.db_path("shop").is_file()
    assert list_splits(tmp_path) == {"test": 1}
