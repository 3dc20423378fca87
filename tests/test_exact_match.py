"""Spider parse + exact-set match: hand-built structures, hand-worked EM pairs, and the spider-de dev set."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from kidsql.data.types import Column, ForeignKey, Schema, Table
from kidsql.sql.exact_match import (
    COMPONENTS,
    FROM_COMPONENT,
    _exact_prepared,
    component_match,
    exact_match,
    foreign_key_map,
    prepare,
)
from kidsql.sql.spider_parse import SpiderParseError, parse_sql, tokenize


sys.path.insert(0, str(Path(__file__).parent))
from _spider_schema import SCHEMA, _table  # noqa: E402
GERMAN = Schema("concert_singer_de", [_table("Sänger", "Sänger_ID", "Name", "Land", "alter")])


# ---- parser ------------------------------------------------------------------------------------------------
def test_tokenize_keeps_quoted_text_and_normalises_operators() -> None:
    toks = tokenize("SELECT `Alter`, [Name] FROM t WHERE a <> 'it''s' AND b == \"X\"")
    assert [(t.kind, t.text) for t in toks] == [
        ("word", "select"), ("ident", "alter"), ("op", ","), ("ident", "name"), ("word", "from"), ("word", "t"),
        ("word", "where"), ("word", "a"), ("op", "!="), ("str", "'it''s'"), ("word", "and"), ("word", "b"),
        ("op", "="), ("dq", "X"),
    ]  # fmt: skip


def test_parse_builds_the_official_structure() -> None:
    sql = (
        "SELECT T1.name, count(*) FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id "
        "WHERE T1.age > 20 GROUP BY T1.name ORDER BY count(*) DESC LIMIT 3"
    )
    cu = lambda col, agg=0: (agg, col, False)  # noqa: E731
    expected = {
        "select": (False, [(0, (0, cu("__singer.name__"), None)), (3, (0, cu("__all__"), None))]),
        "from": {
            "table_units": [("table_unit", "__singer__"), ("table_unit", "__singer_in_concert__")],
            "conds": [(False, 2, (0, cu("__singer.singer_id__"), None), cu("__singer_in_concert.singer_id__"), None)],
        },
        "where": [(False, 3, (0, cu("__singer.age__"), None), 20.0, None)],
        "groupBy": [cu("__singer.name__")],
        "having": [],
        "orderBy": ("desc", [(0, cu("__all__", 3), None)]),
        "limit": 1,  # LIMIT 3 is recorded as 1, as the official parser records every LIMIT
        "intersect": None,
        "union": None,
        "except": None,
    }
    assert parse_sql(sql, SCHEMA) == expected


def test_aliases_are_scoped_per_query() -> None:
    # The official parser keeps one global alias map, so T1 would mean `concert` on both sides here.
    parsed = parse_sql("SELECT T1.name FROM singer AS T1 INTERSECT SELECT T1.concert_name FROM concert AS T1", SCHEMA)
    assert parsed["select"][1][0][1][1][1] == "__singer.name__"
    assert parsed["intersect"]["select"][1][0][1][1][1] == "__concert.concert_name__"


def test_correlated_subquery_resolves_outer_alias() -> None:
    sql = (
        "SELECT name FROM singer AS s "
        "WHERE EXISTS (SELECT * FROM singer_in_concert AS c WHERE c.singer_id = s.singer_id)"
    )
    sub = parse_sql(sql, SCHEMA)["where"][0][3]
    assert sub["where"][0][3] == (0, "__singer.singer_id__", False)


@pytest.mark.parametrize(
    "bad",
    [
        "SELECT nom FROM singer",  # unknown column
        "SELECT name FROM chanteur",  # unknown table
        "SELECT name FROM singer WHERE",  # truncated
        "SELECT name FROM singer WHERE name = 'x",  # unbalanced quote
        "SELECT lower(name) FROM singer",  # function outside the Spider grammar
        "DROP TABLE singer",
        "",
    ],
)
def test_unparsable_sql_raises_spider_parse_error(bad: str) -> None:
    with pytest.raises(SpiderParseError):
        parse_sql(bad, SCHEMA)


def test_foreign_key_map_groups_linked_columns() -> None:
    kmap = foreign_key_map(SCHEMA)
    # column order: * singer(1-5) concert(6-9) singer_in_concert(10-11) stadium(12-14); a group maps to its min id
    assert kmap == {
        "__concert.stadium_id__": "__concert.stadium_id__",
        "__stadium.stadium_id__": "__concert.stadium_id__",
        "__singer_in_concert.singer_id__": "__singer.singer_id__",
        "__singer.singer_id__": "__singer.singer_id__",
        "__singer_in_concert.concert_id__": "__concert.concert_id__",
        "__concert.concert_id__": "__concert.concert_id__",
    }


# ---- exact match: hand-worked pairs --------------------------------------------------------------------------
J = "FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id"
MATCHING = [
    ("SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age > 35"),  # values masked
    ("SELECT name FROM singer WHERE country = 'France'", 'SELECT name FROM singer WHERE country = "Peru"'),
    (f"SELECT T1.name {J}", "SELECT a.name FROM singer a JOIN singer_in_concert b ON a.singer_id = b.singer_id"),
    ("SELECT name, age FROM singer", "SELECT age, name FROM singer"),  # select order
    (  # AND-condition order
        "SELECT name FROM singer WHERE age > 20 AND country = 'x'",
        "SELECT name FROM singer WHERE country = 'y' AND age > 1",
    ),
    ("SELECT name FROM singer WHERE age > 20", "select NAME from SINGER where AGE > 20"),  # case
    ("SELECT name FROM singer WHERE age > 20", 'SELECT "name" FROM [singer] WHERE `age` > 20'),  # quoting
    ("SELECT name FROM singer ORDER BY age LIMIT 1", "SELECT name FROM singer ORDER BY age LIMIT 5"),  # limit value
    ("SELECT DISTINCT country FROM singer", "SELECT country FROM singer"),  # DISTINCT is disabled officially
    (f"SELECT T2.singer_id {J}", f"SELECT T1.singer_id {J}"),  # foreign-key columns are unified
    (  # join order: tables compare as a multiset
        f"SELECT T1.name {J}",
        "SELECT T1.name FROM singer_in_concert AS T2 JOIN singer AS T1 ON T1.singer_id = T2.singer_id",
    ),
    ("SELECT name FROM singer WHERE age > 20;", "SELECT name FROM singer WHERE age > 20"),
    (  # ORDER BY a select alias reads as the aliased expression
        "SELECT country, count(*) FROM singer GROUP BY country ORDER BY count(*) DESC LIMIT 1",
        "SELECT country, count(*) AS n FROM singer GROUP BY country ORDER BY n DESC LIMIT 1",
    ),
]
# (gold, pred, the components that must fail)
DIFFERING = [
    ("SELECT max(age) FROM singer", "SELECT min(age) FROM singer", {"select"}),  # select(no AGG) still matches
    ("SELECT name FROM singer", "SELECT country FROM singer", {"select", "select(no AGG)"}),
    (
        "SELECT country, count(*) FROM singer GROUP BY country",
        "SELECT country, count(*) FROM singer",
        {"group(no Having)", "group", "keywords"},
    ),
    ("SELECT name FROM singer ORDER BY age ASC", "SELECT name FROM singer ORDER BY age DESC", {"order", "keywords"}),
    (
        "SELECT name FROM singer INTERSECT SELECT name FROM stadium",
        "SELECT name FROM singer UNION SELECT name FROM stadium",
        {"IUEN", "keywords"},
    ),
    ("SELECT name FROM singer ORDER BY age", "SELECT name FROM singer ORDER BY age LIMIT 1", {"order", "keywords"}),
    ("SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age < 20", {"where"}),
    (
        "SELECT name FROM singer WHERE age > 20 AND age < 30",
        "SELECT name FROM singer WHERE age > 20 OR age < 30",
        {"and/or", "keywords"},
    ),
    ("SELECT name FROM singer", f"SELECT T1.name {J}", {FROM_COMPONENT}),
    (
        "SELECT country FROM singer GROUP BY country HAVING count(*) > 1",
        "SELECT country FROM singer GROUP BY country",
        {"group", "keywords"},
    ),
    (  # same column, other operator: where(no OP) still matches
        "SELECT name FROM singer WHERE age > 20",
        "SELECT name FROM singer WHERE age NOT IN (20)",
        {"where", "keywords"},
    ),
]


@pytest.mark.parametrize("gold,pred", MATCHING)
def test_exact_match_true(gold: str, pred: str) -> None:
    assert exact_match(gold, pred, SCHEMA)
    assert exact_match(pred, gold, SCHEMA)
    assert all(component_match(gold, pred, SCHEMA).values())


@pytest.mark.parametrize("gold,pred,failing", DIFFERING)
def test_exact_match_false(gold: str, pred: str, failing: set[str]) -> None:
    assert not exact_match(gold, pred, SCHEMA)
    assert not exact_match(pred, gold, SCHEMA)
    comps = component_match(gold, pred, SCHEMA)
    assert set(comps) == set(COMPONENTS) | {FROM_COMPONENT}
    assert {k for k, ok in comps.items() if not ok} == failing


def test_german_names_and_keyword_column() -> None:
    gold = "SELECT name , land , alter FROM sänger ORDER BY alter DESC"
    pred = 'SELECT Land, "alter", Name FROM Sänger AS s ORDER BY s.`Alter` DESC'
    assert exact_match(gold, pred, GERMAN)
    assert not exact_match(gold, "SELECT name, land, alter FROM sänger ORDER BY alter ASC", GERMAN)


def test_unparsable_prediction_is_false_and_unparsable_gold_raises() -> None:
    gold = "SELECT name FROM singer"
    assert not exact_match(gold, "SELECT nonsense FROM", SCHEMA)
    comps = component_match(gold, "SELECT nonsense FROM", SCHEMA)  # scored as the official empty SQL
    assert not comps["select"] and comps["where"] and comps["order"]
    with pytest.raises(SpiderParseError):
        exact_match("SELECT FROM WHERE", gold, SCHEMA)


def test_nested_subquery_compared_with_values_masked() -> None:
    base = "SELECT name FROM singer WHERE age > (SELECT avg(age) FROM singer WHERE country = '{}')"
    assert exact_match(base.format("a"), base.format("b"), SCHEMA)
    other = "SELECT name FROM singer WHERE age > (SELECT max(age) FROM singer WHERE country = 'a')"
    assert not exact_match(base.format("a"), other, SCHEMA)


# ---- spider-de dev -----------------------------------------------------------------------------------------
def _load_schemas(tables_json: Path) -> tuple[dict[str, Schema], dict[str, dict]]:
    """Independent of kidsql.data.spider on purpose: these tests check the SQL side only."""
    raw = json.loads(tables_json.read_text(encoding="utf-8"))
    schemas = {}
    for entry in raw:
        names = entry["table_names_original"]
        tables = [Table(n) for n in names]
        cols = entry["column_names_original"]
        for t_idx, col in cols:
            if t_idx >= 0:
                tables[t_idx].columns.append(Column(names[t_idx], col))
        fks = [
            ForeignKey(names[cols[a][0]], cols[a][1], names[cols[b][0]], cols[b][1]) for a, b in entry["foreign_keys"]
        ]
        schemas[entry["db_id"]] = Schema(entry["db_id"], tables, fks)
    return schemas, {e["db_id"]: e for e in raw}


def _from_stored(sql: dict, entry: dict) -> dict:
    """The dataset's stored `sql` (integer ids, JSON lists) in our id scheme and tuple shape."""
    tables = entry["table_names_original"]
    cols = ["__all__"] + [f"__{tables[t].lower()}.{c.lower()}__" for t, c in entry["column_names_original"][1:]]

    def cu(u: Any) -> Any:
        return None if u is None else (u[0], cols[u[1]], u[2])

    def vu(u: Any) -> Any:
        return None if u is None else (u[0], cu(u[1]), cu(u[2]))

    def val(v: Any) -> Any:
        return conv(v) if isinstance(v, dict) else cu(v) if isinstance(v, list) else v

    def cond(c: list) -> list:
        return [x if i % 2 else (x[0], x[1], vu(x[2]), val(x[3]), val(x[4])) for i, x in enumerate(c)]

    def conv(s: dict) -> dict:
        units = [(k, conv(v) if k == "sql" else f"__{tables[v].lower()}__") for k, v in s["from"]["table_units"]]
        return {
            "select": (s["select"][0], [(a, vu(v)) for a, v in s["select"][1]]),
            "from": {"table_units": units, "conds": cond(s["from"]["conds"])},
            "where": cond(s["where"]),
            "having": cond(s["having"]),
            "groupBy": [cu(u) for u in s["groupBy"]],
            "orderBy": (s["orderBy"][0], [vu(u) for u in s["orderBy"][1]]) if s["orderBy"] else [],
            "limit": None if s["limit"] is None else 1,  # the official evaluator's parser stores 1 for any LIMIT
            **{op: conv(s[op]) if s[op] else None for op in ("intersect", "union", "except")},
        }

    return conv(sql)


def test_spider_de_dev_parses_and_matches_the_stored_parse(spider_de: Path) -> None:
    schemas, entries = _load_schemas(spider_de / "tables.json")
    dev = json.loads((spider_de / "dev.json").read_text(encoding="utf-8"))
    failures, differ, not_em = [], [], []
    for ex in dev:
        schema = schemas[ex["db_id"]]
        try:
            ours = parse_sql(ex["query"], schema)
        except SpiderParseError as err:
            failures.append((ex["query"], str(err)))
            continue
        stored = _from_stored(ex["sql"], entries[ex["db_id"]])
        if ours != stored:
            differ.append(ex["query"])
        if not exact_match(ex["query"], ex["query"], schema):
            not_em.append(ex["query"])
        a, b = prepare(ours, schema), prepare(stored, schema)
        if not (_exact_prepared(a, b) and _exact_prepared(b, a)):
            not_em.append(ex["query"])
    assert not failures, f"{len(failures)} gold queries fail to parse, e.g. {failures[:3]}"
    assert not not_em, f"{len(not_em)} gold queries do not match themselves/the stored parse: {not_em[:3]}"
    # The only structural differences allowed: the official global alias map resolving T1 of the first INTERSECT
    # operand to the second operand's table (2 queries of network_1); our scoping is the correct one.
    assert len(differ) <= 2 and all(" INTERSECT " in q for q in differ), differ


def test_spider_de_em_between_neighbours_agrees_with_stored_parse(spider_de: Path) -> None:
    """EM on pairs of different gold queries must decide as EM on the dataset's own parse of them."""
    schemas, entries = _load_schemas(spider_de / "tables.json")
    dev = json.loads((spider_de / "dev.json").read_text(encoding="utf-8"))
    decided = {True: 0, False: 0}
    for gold, pred in zip(dev, dev[1:]):
        if gold["db_id"] != pred["db_id"] or "INTERSECT" in gold["query"] + pred["query"]:
            continue
        schema = schemas[gold["db_id"]]
        ours = exact_match(gold["query"], pred["query"], schema)
        entry = entries[gold["db_id"]]
        ref = _exact_prepared(
            prepare(_from_stored(pred["sql"], entry), schema), prepare(_from_stored(gold["sql"], entry), schema)
        )
        assert ours == ref, (gold["query"], pred["query"])
        decided[ours] += 1
    assert decided[True] > 100 and decided[False] > 100  # both outcomes are exercised
