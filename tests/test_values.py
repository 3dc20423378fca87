"""The value index: whole-word n-gram matching (checked against a brute-force scan), sample values, the cache."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from kidsql.data import values
from kidsql.data.values import clear_memory_cache, load_value_index, normalize

LONG = "x" * 70  # over MAX_VALUE_CHARS: must not be indexed


def make_db(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript(
        f"""
        CREATE TABLE sänger (id INTEGER PRIMARY KEY, name TEXT, land TEXT, note TEXT);
        INSERT INTO sänger VALUES (1, NULL, '', 'F');
        INSERT INTO sänger VALUES (2, 'Joe Sharp', 'Österreich', '{LONG}');
        INSERT INTO sänger VALUES (3, 'Ann Lee', 'Frankreich', 'F');
        INSERT INTO sänger VALUES (4, 'Joe Sharp', 'Vereinigte Staaten von Amerika', 'Free choice');
        CREATE TABLE konzert (kid INTEGER PRIMARY KEY, thema TEXT, sänger_id INTEGER REFERENCES sänger(id));
        INSERT INTO konzert VALUES (10, 'Free choice', 2);
        INSERT INTO konzert VALUES (11, 'Österreich', 3);
        INSERT INTO konzert VALUES (12, 'IN', 3);
        INSERT INTO konzert VALUES (13, 'Free in Wien', 3);
        """
    )
    con.commit()
    con.close()
    return path


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))
    clear_memory_cache()
    yield make_db(tmp_path / "db" / "music.sqlite")
    clear_memory_cache()


def test_match_non_ascii_case_insensitive_and_multi_column(db: Path) -> None:
    index = load_value_index(db)
    got = index.match("Welche SÄNGER kommen aus ÖSTERREICH?")
    assert got == {("sänger", "land"): ["Österreich"], ("konzert", "thema"): ["Österreich"]}


def test_match_multi_word_values_and_whole_words_only(db: Path) -> None:
    index = load_value_index(db)
    got = index.match("Songs von joe sharp in den Vereinigte Staaten von Amerika")
    assert got == {("sänger", "name"): ["Joe Sharp"], ("sänger", "land"): ["Vereinigte Staaten von Amerika"]}
    # "Frankreichs" contains "Frankreich" but is not the whole word; "f" is below the minimum value length
    assert index.match("Wie viele Sänger Frankreichs haben f als Notiz?") == {}


def test_function_words_are_not_value_mentions_alone(db: Path) -> None:
    index = load_value_index(db)
    assert index.match("Wer singt in Wien?") == {}  # the value "IN" is a German/English function word
    assert index.match("Wann war Free in Wien?") == {("konzert", "thema"): ["Free in Wien"]}


def test_long_values_are_not_indexed_and_nothing_matches_unrelated_question(db: Path) -> None:
    index = load_value_index(db)
    assert index.match(f"what about {LONG}") == {}
    assert index.match("Wie viele Konzerte gibt es?") == {}


def test_matching_agrees_with_brute_force_scan(db: Path) -> None:
    """Random questions made of value words and noise: the n-gram lookup finds exactly what scanning finds."""
    index = load_value_index(db)
    con = sqlite3.connect(db)
    all_values = [
        (t, c, v)
        for t, cols in (("sänger", ("name", "land", "note")), ("konzert", ("thema",)))
        for c in cols
        for (v,) in con.execute(f'SELECT DISTINCT "{c}" FROM "{t}" WHERE typeof("{c}") = \'text\'')
    ]
    con.close()
    vocab = "joe sharp ann lee free choice in wien österreich frankreich vereinigte staaten von amerika der".split()
    rng = random.Random(0)
    for _ in range(200):
        question = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 9)))
        padded = f" {normalize(question)} "
        expected: dict[tuple[str, str], set[str]] = {}
        for t, c, v in all_values:
            norm = normalize(v)
            if norm in values.STOPWORDS:
                continue
            if len(norm) >= values.MIN_VALUE_CHARS and len(v) <= values.MAX_VALUE_CHARS and f" {norm} " in padded:
                expected.setdefault((t, c), set()).add(v)
        got = {k: set(v) for k, v in index.match(question, max_per_column=100).items()}
        assert got == expected, question


def test_sample_values_are_first_distinct_non_empty_in_table_order(db: Path) -> None:
    index = load_value_index(db)
    assert index.samples[("sänger", "name")] == ["Joe Sharp", "Ann Lee"]  # NULL skipped, duplicate once
    assert index.samples[("sänger", "land")][:2] == ["Österreich", "Frankreich"]  # '' skipped
    note = index.samples[("sänger", "note")]
    assert note[0] == "F" and note[1] == "x" * (values.SAMPLE_CHARS - 3) + "..."
    assert index.samples[("konzert", "kid")] == ["10", "11", "12", "13"]


def test_index_is_built_once_then_loaded_from_disk_and_memory(db: Path) -> None:
    first = load_value_index(db)
    assert first.source == "built"
    assert values.cache_path(db).is_file()
    assert load_value_index(db).source == "memory"
    clear_memory_cache()
    again = load_value_index(db)
    assert again.source == "disk"
    assert again.lookup == first.lookup and again.samples == first.samples


def test_changed_database_gets_a_new_index(db: Path) -> None:
    old_cache = values.cache_path(db)
    assert load_value_index(db).match("Berlin") == {}
    con = sqlite3.connect(db)
    con.execute("INSERT INTO konzert VALUES (20, 'Berlin Abend Konzert Nummer eins', 3)")
    con.commit()
    con.close()
    assert values.cache_path(db) != old_cache
    fresh = load_value_index(db)
    assert fresh.source == "built"
    assert fresh.match("Wo war das Berlin Abend Konzert Nummer eins?") == {
        ("konzert", "thema"): ["Berlin Abend Konzert Nummer eins"]
    }


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    from kidsql.errors import KidsqlError

    with pytest.raises(KidsqlError, match="nope.sqlite"):
        load_value_index(tmp_path / "nope.sqlite")
