"""CodeS-style prompts: exact text on a hand-built schema, matched values, and the token budget's drop order."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from kidsql.data.types import Column, Example, ForeignKey, Schema, Table
from kidsql.prompts import SQL_START, PromptOptions, build_prompt, target_text


pytestmark = pytest.mark.usefixtures("isolated_cache")


def music_db(tmp_path: Path) -> Path:
    path = tmp_path / "music" / "music.sqlite"
    path.parent.mkdir()
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT);
        INSERT INTO singer VALUES (1, 'Joe Sharp', 'France'), (2, 'Ann Lee', 'Österreich'), (3, 'Bo Li', 'France');
        CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER, theme TEXT);
        INSERT INTO concert VALUES (10, 1, 'Free choice'), (11, 1, 'Free choice 2');
        """
    )
    con.commit()
    con.close()
    return path


MUSIC = Schema(
    db_id="music",
    tables=[
        Table(
            "singer",
            [
                Column("singer", "singer_id", "integer", primary_key=True),
                Column("singer", "name", "text"),
                Column("singer", "country", "text", comment="home country"),
            ],
        ),
        Table(
            "concert",
            [
                Column("concert", "concert_id", "integer", primary_key=True),
                Column("concert", "singer_id", "integer"),
                Column("concert", "theme", "text"),
            ],
        ),
    ],
    foreign_keys=[ForeignKey("concert", "singer_id", "singer", "singer_id")],
)


def test_exact_prompt_text(tmp_path: Path) -> None:
    ex = Example(db_id="music", question="Which singers come from France?", sql="SELECT name FROM singer")
    expected = (
        "table singer , columns = [ singer.singer_id ( integer | primary key | values : 1 , 2 ) , "
        "singer.name ( text | values : Joe Sharp , Ann Lee ) , "
        "singer.country ( text | comment : home country | values : France , Österreich ) ]\n"
        "table concert , columns = [ concert.concert_id ( integer | primary key | values : 10 , 11 ) , "
        "concert.singer_id ( integer | values : 1 ) , "
        "concert.theme ( text | values : Free choice , Free choice 2 ) ]\n"
        "foreign keys :\n"
        "concert.singer_id = singer.singer_id\n"
        "matched values :\n"
        "singer.country ( France )\n"
        "question : Which singers come from France?\n"
        "SQL:"
    )
    assert build_prompt(ex, MUSIC, music_db(tmp_path)) == expected
    assert expected.endswith(SQL_START)
    assert target_text("  SELECT 1 ") == " SELECT 1"


def test_prompt_without_database_and_with_evidence() -> None:
    ex = Example(db_id="music", question="How many?", sql="", evidence="singers means rows of singer")
    expected = (
        "table singer , columns = [ singer.singer_id ( integer | primary key ) , singer.name ( text ) , "
        "singer.country ( text | comment : home country ) ]\n"
        "table concert , columns = [ concert.concert_id ( integer | primary key ) , concert.singer_id ( integer ) , "
        "concert.theme ( text ) ]\n"
        "foreign keys :\n"
        "concert.singer_id = singer.singer_id\n"
        "evidence : singers means rows of singer\n"
        "question : How many?\n"
        "SQL:"
    )
    assert build_prompt(ex, MUSIC, None) == expected


def test_matched_values_only_for_values_in_the_question(tmp_path: Path) -> None:
    db = music_db(tmp_path)
    hit = build_prompt(Example("music", "Concerts with theme free choice by Ann Lee?", ""), MUSIC, db)
    assert hit.split("matched values :\n")[1].split("\nquestion")[0] == (
        "singer.name ( Ann Lee )\nconcert.theme ( Free choice )"
    )
    miss = build_prompt(Example("music", "How many singers are there?", ""), MUSIC, db)
    assert "matched values" not in miss
    off = build_prompt(
        Example("music", "Singers from France?", ""), MUSIC, db, PromptOptions(with_matched_values=False)
    )
    assert "matched values" not in off and "values : France" in off
    three = build_prompt(Example("music", "x", ""), MUSIC, db, PromptOptions(num_sample_values=3))
    assert "values : 1 , 2 , 3 )" in three
    none = build_prompt(Example("music", "France", ""), MUSIC, db, PromptOptions(with_values=False))
    assert "values : France" not in none and "singer.country ( France )" in none


# --- token budget -------------------------------------------------------------------------------------------


def shop_db(tmp_path: Path) -> tuple[Schema, Path]:
    path = tmp_path / "shop" / "shop.sqlite"
    path.parent.mkdir()
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE customer (customer_id INTEGER PRIMARY KEY, name TEXT, city TEXT, birthday TEXT);
        INSERT INTO customer VALUES (1, 'Ada', 'Paris', '1990-01-01');
        CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(customer_id),
                             amount REAL);
        INSERT INTO orders VALUES (7, 1, 9.5);
        CREATE TABLE supplier (supplier_id INTEGER PRIMARY KEY, phone TEXT);
        INSERT INTO supplier VALUES (3, '555');
        """
    )
    con.commit()
    con.close()
    from kidsql.data.sqlite_schema import read_schema

    return read_schema(path, "shop"), path


# The documented order, worked out by hand for "What is the name of each customer in Paris?":
# scores: customer.customer_id 2 (word "customer"), name 2, city 3 (matched "Paris"), birthday 0;
# orders.order_id 0, orders.customer_id 2, amount 0; supplier.* 0. Tables: customer 5, orders 2, supplier 0.
EXPECTED_DROPS = [
    {"supplier.phone"},  # 1. irrelevant non-key columns, least relevant table first
    {"orders.amount"},
    {"customer.birthday"},
    {"supplier.supplier_id"},  # 2. the irrelevant table, as a whole
    {"customer.name"},  # 3. relevant non-key columns, lowest score first
    {"customer.city"},
    {"orders.order_id"},  # 4. key columns; orders.customer_id is its table's last column, so it stays
    {"orders.customer_id"},  # 5. whole tables, least relevant first
    {"customer.customer_id"},
]
ALL_COLUMNS = set().union(*EXPECTED_DROPS)


def kept_columns(prompt: str) -> set[str]:
    schema_part = "\n".join(line for line in prompt.splitlines() if line.startswith("table "))
    return set(re.findall(r"(\w+\.\w+) \(", schema_part))


def test_budget_drops_in_documented_order_and_fits(tmp_path: Path) -> None:
    schema, db = shop_db(tmp_path)
    ex = Example("shop", "What is the name of each customer in Paris?", "")
    full = build_prompt(ex, schema, db)
    assert kept_columns(full) == ALL_COLUMNS
    prefixes = [ALL_COLUMNS - set().union(*EXPECTED_DROPS[:k]) for k in range(len(EXPECTED_DROPS) + 1)]
    question_only = len(f"question : {ex.question}{SQL_START}".split())
    results: list[tuple[int, int]] = []  # (budget, steps applied)
    length_after: dict[int, int] = {}
    for budget in range(len(full.split()), question_only - 1, -1):
        prompt = build_prompt(ex, schema, db, PromptOptions(max_prompt_tokens=budget))
        assert len(prompt.split()) <= budget
        kept = kept_columns(prompt)
        assert kept in prefixes, (budget, kept)
        k = prefixes.index(kept)
        results.append((budget, k))
        length_after[k] = len(prompt.split())
    assert set(length_after) == set(range(len(prefixes)))  # every step is reached as the budget shrinks
    ks = [k for _, k in results]
    assert ks == sorted(ks)  # a smaller budget never keeps more
    for budget, k in results:  # the least-cut prompt that fits: one step fewer would not
        assert k == min(j for j, n in length_after.items() if n <= budget)
    assert prompt.endswith("question : What is the name of each customer in Paris?" + SQL_START)


def test_budget_removes_fk_and_matched_lines_of_dropped_columns(tmp_path: Path) -> None:
    schema, db = shop_db(tmp_path)
    ex = Example("shop", "What is the name of each customer in Paris?", "")
    full = build_prompt(ex, schema, db)
    assert "orders.customer_id = customer.customer_id" in full and "customer.city ( Paris )" in full
    # a budget that keeps only key columns (steps 1-6 applied)
    tight = None
    for budget in range(len(full.split()), 0, -1):
        p = build_prompt(ex, schema, db, PromptOptions(max_prompt_tokens=budget))
        if kept_columns(p) == {"orders.order_id", "orders.customer_id", "customer.customer_id"}:
            tight = p
            break
    assert tight is not None
    assert "matched values" not in tight
    assert "orders.customer_id = customer.customer_id" in tight


def test_budget_uses_the_given_counter_few_times(tmp_path: Path) -> None:
    schema, db = shop_db(tmp_path)
    ex = Example("shop", "What is the name of each customer in Paris?", "")
    calls = []

    def chars(text: str) -> int:
        calls.append(text)
        return len(text)

    full = build_prompt(ex, schema, db)
    budget = len(full) // 2
    prompt = build_prompt(ex, schema, db, PromptOptions(max_prompt_tokens=budget, count_tokens=chars))
    assert len(prompt) <= budget
    assert len(calls) <= 2 + 4  # full, everything-dropped, then bisection over 9 steps (<= 4 probes)
    again = build_prompt(ex, schema, db, PromptOptions(max_prompt_tokens=budget, count_tokens=chars))
    assert again == prompt  # deterministic


def test_many_prompts_fit_in_batches_as_a_linear_scan_would(tmp_path: Path) -> None:
    """fit_prompts advances every example's bisection together and counts each round in one `many` call; the
    prompts are those a brute-force scan over the drop order gives (the first prefix of drops that fits)."""
    from kidsql.prompts import _drop_steps, _render, _values_for, fit_prompts

    schema, db = shop_db(tmp_path)
    questions = ["What is the name of each customer in Paris?", "How many orders are there?",
                 "List the order ids of customers named Ann", "Which city has the most customers?"]
    batches: list[int] = []

    class Counter:
        def __call__(self, text: str) -> int:
            raise AssertionError("a counter with `many` is called in batches only")

        def many(self, texts: list[str]) -> list[int]:
            batches.append(len(texts))
            return [len(t) for t in texts]

    full_lengths = [len(build_prompt(Example("shop", q, ""), schema, db)) for q in questions]
    for budget in (min(full_lengths) // 3, min(full_lengths) // 2, max(full_lengths) - 5, 10**6):
        batches.clear()
        examples = [Example("shop", q, "") for q in questions]
        got = fit_prompts([(ex, schema, db) for ex in examples], PromptOptions(max_prompt_tokens=budget,
                                                                               count_tokens=Counter()))
        for ex, (prompt, dropped) in zip(examples, got):
            samples, matched = _values_for(schema, db, ex, PromptOptions())
            steps = _drop_steps(schema, matched, f"{ex.question} {ex.evidence}")
            prompts = [_render(schema, set().union(*steps[:k]), samples, matched, ex) for k in range(len(steps) + 1)]
            want = next((p for p in prompts if len(p) <= budget), prompts[-1])
            assert prompt == want and len(dropped) == sum(len(s) for s in steps[: prompts.index(want)])
        assert len(batches) <= 2 + 4 and max(batches) <= len(questions)  # rounds, not one call per prompt


def test_over_budget_question_returns_shortest_prompt(tmp_path: Path) -> None:
    schema, db = shop_db(tmp_path)
    ex = Example("shop", "What is the name of each customer in Paris?", "")
    prompt = build_prompt(ex, schema, db, PromptOptions(max_prompt_tokens=3))
    assert prompt == f"question : {ex.question}{SQL_START}"


def test_identifiers_that_are_not_one_word_are_back_quoted() -> None:
    schema = Schema(
        db_id="school",
        tables=[Table("frpm", [Column("frpm", "Free Meal Count (K-12)", "real"), Column("frpm", "CDSCode", "text")])],
        foreign_keys=[ForeignKey("frpm", "CDSCode", "my table", "CDS`Code")],
    )
    prompt = build_prompt(Example("school", "q", ""), schema, None)
    assert prompt.splitlines()[:3] == [
        "table frpm , columns = [ frpm.`Free Meal Count (K-12)` ( real ) , frpm.CDSCode ( text ) ]",
        "foreign keys :",
        "frpm.CDSCode = `my table`.`CDS``Code`",
    ]


def test_prompt_options_round_trip_and_bad_file(tmp_path):
    from kidsql.errors import KidsqlError
    from kidsql.prompts import PromptOptions, read_prompt_options, save_prompt_options

    assert read_prompt_options(tmp_path) == {}
    save_prompt_options(PromptOptions(num_sample_values=0, with_values=False, max_prompt_tokens=77), tmp_path)
    saved = read_prompt_options(tmp_path)
    assert saved["num_sample_values"] == 0 and saved["with_values"] is False and saved["max_prompt_tokens"] == 77
    assert PromptOptions(**saved).with_matched_values is True
    (tmp_path / "prompt_options.json").write_text('{"num_sample_values": 1, "colour": 3}')
    with pytest.raises(KidsqlError, match="colour"):
        read_prompt_options(tmp_path)
    (tmp_path / "prompt_options.json").write_text("{oops")
    with pytest.raises(KidsqlError, match="malformed JSON"):
        read_prompt_options(tmp_path)
