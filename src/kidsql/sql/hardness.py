"""Spider hardness (easy / medium / hard / extra), exactly as the official `eval_hardness` counts it.

The rules run on the official `sql` structure, so they apply to our parse (`kidsql.sql.spider_parse`) and to the
`sql` field stored in a Spider `dev.json` alike (`hardness_from_spider_dict`). The official counters have quirks
that we keep on purpose, because published per-level numbers are computed with them:
- `count_others` counts "aggregates" in WHERE/HAVING by looking at the first field of each item, which is the
  NOT flag of a condition (and, in HAVING, the and/or words themselves, which always count);
- LIKE and OR are counted across the join conditions, WHERE and HAVING; joins count as (tables - 1).

Fallback (documented choice): `hardness` never raises. It parses with the schema when given; if that fails
(e.g. an unknown column) it re-parses without the schema, since hardness only counts components; only if the
SQL is outside the grammar altogether does it estimate the same three counters from keywords
(`hardness_from_keywords`), which agrees with the official level on ordinary queries but is an approximation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kidsql.data.types import Schema

LEVELS = ("easy", "medium", "hard", "extra")

_LIKE = 9  # WHERE_OPS.index("like") in the official tables
_AGGS = ("max", "min", "count", "sum", "avg")


def _has_agg(unit: Any) -> bool:
    # Official `has_agg`: first field != 0. Strings ("and"/"or") therefore count, as in the official code.
    return unit[0] != 0


def _count_agg(units: Sequence[Any]) -> int:
    return sum(1 for unit in units if _has_agg(unit))


def _conditions(sql: dict) -> tuple[list, list, list]:
    """Join conditions, WHERE, HAVING as lists (JSON gives lists, our parser too; copies keep callers safe)."""
    return list(sql["from"]["conds"]), list(sql["where"]), list(sql["having"])


def count_component1(sql: dict) -> int:
    """WHERE, GROUP BY, ORDER BY, LIMIT (presence), joins (tables - 1), each OR, each LIKE."""
    count = sum(1 for key in ("where", "groupBy", "orderBy") if len(sql[key]) > 0)
    count += sql["limit"] is not None
    table_units = sql["from"]["table_units"]
    if table_units:
        count += len(table_units) - 1
    from_conds, where, having = _conditions(sql)
    and_or = from_conds[1::2] + where[1::2] + having[1::2]
    count += sum(1 for token in and_or if token == "or")
    cond_units = from_conds[::2] + where[::2] + having[::2]
    count += sum(1 for unit in cond_units if unit[1] == _LIKE)
    return count


def nested_sql(sql: dict) -> list[dict]:
    """Sub-queries in conditions (not in FROM) plus the INTERSECT/EXCEPT/UNION operand, as the official code."""
    from_conds, where, having = _conditions(sql)
    nested = []
    for unit in from_conds[::2] + where[::2] + having[::2]:
        nested.extend(v for v in (unit[3], unit[4]) if isinstance(v, dict))
    nested.extend(sql[op] for op in ("intersect", "except", "union") if sql[op] is not None)
    return nested


def count_component2(sql: dict) -> int:
    return len(nested_sql(sql))


def count_others(sql: dict) -> int:
    """More than one aggregate, more than one select column, more than one WHERE condition, multi-column GROUP."""
    agg_count = _count_agg(sql["select"][1])
    agg_count += _count_agg(sql["where"][::2])
    agg_count += _count_agg(sql["groupBy"])
    if len(sql["orderBy"]) > 0:
        units = sql["orderBy"][1]
        agg_count += _count_agg([u[1] for u in units if u[1]] + [u[2] for u in units if u[2]])
    agg_count += _count_agg(sql["having"])
    count = int(agg_count > 1)
    count += len(sql["select"][1]) > 1
    count += len(sql["where"]) > 1  # the list holds conditions and and/or words: > 1 means >= 2 conditions
    count += len(sql["groupBy"]) > 1
    return count


def level_from_counts(comp1: int, comp2: int, others: int) -> str:
    """The official decision table."""
    if comp1 <= 1 and others == 0 and comp2 == 0:
        return "easy"
    if (others <= 2 and comp1 <= 1 and comp2 == 0) or (comp1 <= 2 and others < 2 and comp2 == 0):
        return "medium"
    if (
        (others > 2 and comp1 <= 2 and comp2 == 0)
        or (2 < comp1 <= 3 and others <= 2 and comp2 == 0)
        or (comp1 <= 1 and others == 0 and comp2 <= 1)
    ):
        return "hard"
    return "extra"


def hardness_from_spider_dict(sql: dict) -> str:
    """Hardness of an official `sql` structure (ours, or the `sql` field of a Spider JSON file)."""
    return level_from_counts(count_component1(sql), count_component2(sql), count_others(sql))


_LOOSE_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|\w+|[(),]")


def hardness_from_keywords(sql: str) -> str:
    """Best-effort level for SQL outside the grammar: the three official counters estimated from keywords."""
    toks = [t.lower() for t in _LOOSE_TOKEN.findall(sql)]
    comp1 = sum(w in toks for w in ("where", "group", "order", "limit"))
    comp1 += sum(toks.count(w) for w in ("join", "or", "like"))
    comp2 = max(0, toks.count("select") - 1)
    aggs = sum(1 for i, t in enumerate(toks[:-1]) if t in _AGGS and toks[i + 1] == "(")
    depth, select_commas, where_ands = 0, 0, 0
    clause = ""
    for t in toks:
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        elif depth == 0 and t in ("select", "from", "where", "group", "order", "having", "limit"):
            clause = t
        elif depth == 0 and clause == "select" and t == ",":
            select_commas += 1
        elif depth == 0 and clause == "where" and t in ("and", "or"):
            where_ands += 1
    others = int(aggs > 1) + int(select_commas > 0) + int(where_ands > toks.count("between"))
    return level_from_counts(comp1, comp2, others)


def hardness(sql: str, schema: Schema | None = None) -> str:
    """Official Spider hardness of a query; never raises (see the module docstring for the fallback)."""
    from kidsql.sql.spider_parse import SpiderParseError, parse_sql

    for attempt in (schema, None) if schema is not None else (None,):
        try:
            return hardness_from_spider_dict(parse_sql(sql, attempt))
        except SpiderParseError:
            continue
        except RecursionError:
            break
    return hardness_from_keywords(sql)
