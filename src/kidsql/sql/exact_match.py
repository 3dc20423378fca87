"""Spider exact-set match (EM), following the official `evaluation.py` (`eval_exact_match`, test-suite version).

Both queries are parsed into the official structure, then "rebuilt" the official way before comparison:
- values are masked: every literal in WHERE / HAVING / join conditions becomes None (sub-queries stay, with their
  own values masked), so `name = 'Bob'` matches `name = 'Ann'`;
- in the outer query (and its INTERSECT/UNION/EXCEPT operands), a column that takes part in a foreign key is
  replaced by one representative of its key group, so `T2.singer_id` and `T1.singer_id` compare equal; DISTINCT
  flags are dropped there. Sub-queries inside conditions are compared as-is (official behaviour);
- then each component is compared as a multiset (select, select without aggregates, where, where without
  operators, group by column names, group+having, order (direction, keys, and LIMIT presence), the and/or set,
  IUEN recursively, the keyword set), and finally the FROM tables as a multiset. `exact` = all of them.
Join conditions themselves are not compared (as in the official test-suite evaluation); LIMIT's value is ignored.
"""

from __future__ import annotations

import json
from typing import Any

from kidsql.data.types import Schema
from kidsql.sql.spider_parse import (
    ALL_COLUMNS,
    TABLE_UNIT,
    WHERE_OPS,
    SpiderParseError,
    empty_sql,
    parse_sql,
    per_schema,
    schema_map,
)

COMPONENTS = (
    "select",
    "select(no AGG)",
    "where",
    "where(no OP)",
    "group(no Having)",
    "group",
    "order",
    "and/or",
    "IUEN",
    "keywords",
)
FROM_COMPONENT = "from"  # the final table check of `eval_exact_match`, reported beside the official ten

SqlDict = dict[str, Any]


# ---- rebuild: foreign keys and masking ---------------------------------------------------------------------
def foreign_key_map(schema: Schema) -> dict[str, str]:
    """Column id -> representative id of its foreign-key group (official `build_foreign_key_map`).

    The official grouping puts a pair into the first existing group that holds either column (groups are not
    merged); we keep that, so group membership is the official one.
    """
    ids = [ALL_COLUMNS] + [f"__{c.table.lower()}.{c.name.lower()}__" for c in schema.columns()]
    index = {name: i for i, name in reversed(list(enumerate(ids)))}
    groups: list[set[int]] = []
    for fk in schema.foreign_keys:
        k1 = index.get(f"__{fk.table.lower()}.{fk.column.lower()}__")
        k2 = index.get(f"__{fk.ref_table.lower()}.{fk.ref_column.lower()}__")
        if k1 is None or k2 is None:
            continue
        group = next((g for g in groups if k1 in g or k2 in g), None)
        if group is None:
            group = set()
            groups.append(group)
        group.update((k1, k2))
    kmap: dict[str, str] = {}
    for group in groups:
        head = ids[min(group)]
        for i in group:
            kmap[ids[i]] = head
    return kmap


def _mask_condition(condition: list) -> list:
    out: list = []
    for i, item in enumerate(condition):
        if i % 2:
            out.append(item)
            continue
        not_op, op_id, val_unit, val1, val2 = item
        val1 = _mask_values(val1) if isinstance(val1, dict) else None
        val2 = _mask_values(val2) if isinstance(val2, dict) else None  # a column on the right side is masked too
        out.append((not_op, op_id, val_unit, val1, val2))
    return out


def _mask_values(sql: SqlDict) -> SqlDict:
    """Official `rebuild_sql_val`: literals -> None in conditions; FROM sub-queries are left untouched."""
    out = dict(sql)
    out["from"] = {"table_units": list(sql["from"]["table_units"]), "conds": _mask_condition(sql["from"]["conds"])}
    out["where"] = _mask_condition(sql["where"])
    out["having"] = _mask_condition(sql["having"])
    for op in ("intersect", "except", "union"):
        out[op] = None if sql[op] is None else _mask_values(sql[op])
    return out


class _ColumnRebuilder:
    """Official `rebuild_sql_col`: foreign-key columns -> representative, DISTINCT flags dropped."""

    def __init__(self, valid: set[str], kmap: dict[str, str]) -> None:
        self.valid = valid
        self.kmap = kmap

    def col_unit(self, unit: tuple | None) -> tuple | None:
        if unit is None:
            return None
        agg, col, _distinct = unit
        if col in self.kmap and col in self.valid:
            col = self.kmap[col]
        return (agg, col, None)

    def val_unit(self, unit: tuple | None) -> tuple | None:
        if unit is None:
            return None
        op, unit1, unit2 = unit
        return (op, self.col_unit(unit1), self.col_unit(unit2))

    def condition(self, condition: list) -> list:
        return [
            item if i % 2 else (item[0], item[1], self.val_unit(item[2]), item[3], item[4])
            for i, item in enumerate(condition)
        ]

    def sql(self, sql: SqlDict) -> SqlDict:
        out = dict(sql)
        out["select"] = (None, [(agg, self.val_unit(vu)) for agg, vu in sql["select"][1]])
        out["from"] = {"table_units": sql["from"]["table_units"], "conds": self.condition(sql["from"]["conds"])}
        out["where"] = self.condition(sql["where"])
        out["having"] = self.condition(sql["having"])
        out["groupBy"] = [self.col_unit(u) for u in sql["groupBy"]]
        if sql["orderBy"]:
            direction, units = sql["orderBy"]
            out["orderBy"] = (direction, [self.val_unit(u) for u in units])
        for op in ("intersect", "except", "union"):
            out[op] = None if sql[op] is None else self.sql(sql[op])
        return out


def prepare(sql: SqlDict, schema: Schema, kmap: dict[str, str] | None = None) -> SqlDict:
    """A parsed query, rebuilt for comparison (values masked, foreign keys unified), as the official eval does."""
    tables = schema_map(schema)
    in_from = {tu[1][2:-2] for tu in sql["from"]["table_units"] if tu[0] == TABLE_UNIT}
    valid = {f"__{t}.{c}__" for t in in_from for c in tables.get(t, ())}
    rebuilder = _ColumnRebuilder(valid, foreign_key_map(schema) if kmap is None else kmap)
    return rebuilder.sql(_mask_values(sql))


# ---- component comparison ----------------------------------------------------------------------------------
def _multiset_match(pred: list, label: list) -> bool:
    """Official `get_scores(...)[f1] == 1` for a greedy multiset count: same size, every pred item matched."""
    if len(pred) != len(label):
        return False
    remaining = list(label)
    for item in pred:
        if item not in remaining:
            return False
        remaining.remove(item)
    return True


def _group_names(sql: SqlDict) -> list[str]:
    # The official group check drops the table: "__t.col__" -> "col__".
    return [u[1].split(".")[1] if "." in u[1] else u[1] for u in sql["groupBy"]]


def _order_match(pred: SqlDict, label: SqlDict) -> bool:
    if len(pred["orderBy"]) > 0 and len(label["orderBy"]) > 0:
        same_limit = (pred["limit"] is None) == (label["limit"] is None)
        return pred["orderBy"] == label["orderBy"] and same_limit
    return len(pred["orderBy"]) == 0 and len(label["orderBy"]) == 0


def _having_match(pred: SqlDict, label: SqlDict) -> bool:
    pred_has, label_has = len(pred["groupBy"]) > 0, len(label["groupBy"]) > 0
    if not pred_has and not label_has:
        return True
    if pred_has != label_has:
        return False
    same_cols = [u[1] for u in pred["groupBy"]] == [u[1] for u in label["groupBy"]]
    return same_cols and pred["having"] == label["having"]


def keywords(sql: SqlDict) -> set[str]:
    """Official `get_keywords`: clauses present, order direction, set ops, and or/not/in/like in conditions."""
    res = set()
    for key, word in (("where", "where"), ("groupBy", "group"), ("having", "having")):
        if len(sql[key]) > 0:
            res.add(word)
    if len(sql["orderBy"]) > 0:
        res.update((sql["orderBy"][0], "order"))
    if sql["limit"] is not None:
        res.add("limit")
    res.update(op for op in ("except", "union", "intersect") if sql[op] is not None)
    conds = list(sql["from"]["conds"]) + list(sql["where"]) + list(sql["having"])
    if "or" in conds[1::2]:
        res.add("or")
    units = conds[::2]
    if any(u[0] for u in units):
        res.add("not")
    if any(u[1] == WHERE_OPS.index("in") for u in units):
        res.add("in")
    if any(u[1] == WHERE_OPS.index("like") for u in units):
        res.add("like")
    return res


def _iuen_match(pred: SqlDict, label: SqlDict) -> bool:
    """INTERSECT / EXCEPT / UNION: same operators present, and each shared operand matches exactly."""
    for op in ("intersect", "except", "union"):
        if (pred[op] is None) != (label[op] is None):
            return False
        if pred[op] is not None and not _exact_prepared(pred[op], label[op]):
            return False
    return True


def _components(pred: SqlDict, label: SqlDict) -> dict[str, bool]:
    pred_sel, label_sel = pred["select"][1], label["select"][1]
    pred_where, label_where = pred["where"][::2], label["where"][::2]
    return {
        "select": _multiset_match(pred_sel, label_sel),
        "select(no AGG)": _multiset_match([u[1] for u in pred_sel], [u[1] for u in label_sel]),
        "where": _multiset_match(pred_where, label_where),
        "where(no OP)": _multiset_match([u[2] for u in pred_where], [u[2] for u in label_where]),
        "group(no Having)": _multiset_match(_group_names(pred), _group_names(label)),
        "group": _having_match(pred, label),
        "order": _order_match(pred, label),
        "and/or": set(pred["where"][1::2]) == set(label["where"][1::2]),
        "IUEN": _iuen_match(pred, label),
        "keywords": keywords(pred) == keywords(label),
        FROM_COMPONENT: _tables_match(pred, label),
    }


def _table_key(unit: tuple) -> str:
    # FROM sub-queries are dicts: compare the table multiset through a canonical text form.
    return json.dumps(unit, sort_keys=True, default=str)


def _tables_match(pred: SqlDict, label: SqlDict) -> bool:
    label_units = label["from"]["table_units"]
    if not label_units:
        return True
    return sorted(map(_table_key, pred["from"]["table_units"])) == sorted(map(_table_key, label_units))


def _exact_prepared(pred: SqlDict, label: SqlDict) -> bool:
    return all(_components(pred, label).values())


# ---- public API --------------------------------------------------------------------------------------------
def component_match(gold: str, pred: str, schema: Schema) -> dict[str, bool]:
    """Per-component match (the official ten, plus "from"); an unparsable prediction is scored as empty SQL.

    Raises `SpiderParseError` when the gold query cannot be parsed.
    """
    kmap = foreign_key_map(schema)
    label = prepare(parse_sql(gold, schema), schema, kmap)
    try:
        parsed = parse_sql(pred, schema)
    except (SpiderParseError, RecursionError):
        parsed = empty_sql()
    return _components(prepare(parsed, schema, kmap), label)


def exact_match(gold: str, pred: str, schema: Schema) -> bool:
    """Official Spider exact-set match. Unparsable prediction -> False; unparsable gold -> `SpiderParseError`.

    The gold's prepared structure is built once per schema (`per_schema`): the comparison only reads it, and
    an evaluation compares many predictions with one gold.
    """
    kmap = per_schema(schema, "foreign_key_map", lambda: foreign_key_map(schema))
    label = per_schema(schema, ("label", gold), lambda: prepare(parse_sql(gold, schema), schema, kmap))
    try:
        parsed = parse_sql(pred, schema)
    except (SpiderParseError, RecursionError):
        return False
    return _exact_prepared(prepare(parsed, schema, kmap), label)
