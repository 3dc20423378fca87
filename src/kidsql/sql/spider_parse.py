"""SQL text -> the structured `sql` dict of the official Spider evaluation (taoyds/spider `process_sql.py`).

Hardness and exact-set match (EM) are defined by the official scripts on this dict, so we produce the very same
shape (tuples and lists, same op indices) and the official rules can be applied to ours and to the `sql` field of
a Spider `dev.json` alike:

    col_unit  = (agg_id, col_id, is_distinct)
    val_unit  = (unit_op, col_unit1, col_unit2 | None)
    cond_unit = (not_op, op_id, val_unit, val1, val2)        val: float | str | sql dict | col_unit | tuple
    condition = [cond_unit, "and" | "or", cond_unit, ...]
    sql = {select: (distinct, [(agg_id, val_unit)]), from: {table_units: [(type, id | sql)], conds: condition},
           where, having: condition, groupBy: [col_unit], orderBy: [] | (dir, [val_unit]), limit: int | None,
           intersect / union / except: sql | None}

Ids follow the official `Schema.idMap`: `__all__` for `*`, `__table.column__` and `__table__`, lower-cased.

Our own recursive-descent parser (not the official code) is more tolerant where the official one fails on valid
SQLite, because predictions written by small models use those forms: proper alias scoping per sub-query
(the official map is global), aliases without AS, quoted identifiers (`x`, [x], and "x" where a column is
expected), `<>`, comma joins and LEFT/INNER/CROSS JOIN, IS [NOT] NULL, [NOT] EXISTS, IN (literal list), signed
numbers, LIMIT .. OFFSET, UNION ALL (read as UNION), ORDER BY a select alias, and parenthesised condition groups
(flattened into the and/or list, which is all the official structure can hold). Anything else (functions, CASE,
arithmetic on values) raises `SpiderParseError`.

With `schema=None` names are not checked (ids are built from the names as written): enough for hardness, which
only counts components; EM needs the schema so that `name` and `T1.name` get the same id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

from kidsql.data.types import Schema
from kidsql.errors import KidsqlError

# Index tables of the official evaluation; the position is the id stored in the dict.
WHERE_OPS = ("not", "between", "=", ">", "<", ">=", "<=", "!=", "in", "like", "is", "exists")
UNIT_OPS = ("none", "-", "+", "*", "/")
AGG_OPS = ("none", "max", "min", "count", "sum", "avg")
SQL_OPS = ("intersect", "union", "except")
ORDER_OPS = ("desc", "asc")
TABLE_UNIT = "table_unit"
TABLE_SQL = "sql"
ALL_COLUMNS = "__all__"

# Words that end an expression: never read as a bare column or alias (a column called `alter` is fine).
_RESERVED = frozenset(
    """select from where group by having order limit offset intersect union except all and or not on join as
    in like between is exists distinct asc desc left right inner outer cross natural full using""".split()
)
_JOIN_WORDS = ("natural", "left", "right", "full", "outer", "inner", "cross")
_CMP_OPS = ("=", ">", "<", ">=", "<=", "!=")
_LITERAL_WORDS = ("null", "true", "false")

SqlDict = dict[str, Any]


_CLAUSE_WORDS = ("select", "from", "where", "group", "order", "limit", "intersect", "union", "except")


class SpiderParseError(KidsqlError):
    """The SQL is outside what the Spider structure can represent (or is not SQL). One line, names the spot."""


class Token(NamedTuple):
    """`kind`: word (bare name or keyword, lower-cased), ident (`x` / [x], lower-cased), dq ("x", as written),
    str ('x' as written), num, op."""

    kind: str
    text: str


_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
    | (?P<str>'(?:[^']|'')*')
    | (?P<dq>"(?:[^"]|"")*")
    | (?P<bq>`(?:[^`]|``)*`)
    | (?P<br>\[[^\]]*\])
    | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?!\w))
    | (?P<word>[^\W\d]\w*|\d+[^\W\d]\w*)
    | (?P<op>!\s*=|<>|>\s*=|<\s*=|==|\|\||[=<>(),;.*+\-/%])""",
    re.VERBOSE,
)


def tokenize(sql: str) -> list[Token]:
    """Split SQL into tokens; quoted text stays one token so values and odd names survive intact."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN_RE.match(sql, pos)
        if m is None:
            raise SpiderParseError(f"cannot tokenize SQL at {sql[pos:pos + 20]!r} (unbalanced quote?)")
        pos = m.end()
        kind, text = m.lastgroup or "", m.group()
        if kind == "ws":
            continue
        if kind == "word":
            tokens.append(Token("word", text.lower()))
        elif kind == "bq":
            tokens.append(Token("ident", text[1:-1].replace("``", "`").lower()))
        elif kind == "br":
            tokens.append(Token("ident", text[1:-1].lower()))
        elif kind == "dq":
            tokens.append(Token("dq", text[1:-1].replace('""', '"')))
        elif kind == "op":
            # `> =` is `>=`, as the official tokenizer joins `!`, `>`, `<` with a following `=`
            text = "".join(text.split())
            tokens.append(Token("op", {"<>": "!=", "==": "="}.get(text, text)))
        else:
            tokens.append(Token(kind, text))
    return tokens


def empty_sql() -> SqlDict:
    """What the official evaluation scores an unparsable prediction as."""
    return {
        "select": (False, []),
        "from": {"table_units": [], "conds": []},
        "where": [],
        "groupBy": [],
        "having": [],
        "orderBy": [],
        "limit": None,
        "intersect": None,
        "union": None,
        "except": None,
    }


_PER_SCHEMA_MAX = 4096
_per_schema: dict[tuple[int, Any], tuple[Schema, Any]] = {}


def per_schema(schema: Schema, key: Any, build: Callable[[], Any]) -> Any:
    """`build()` once per (schema object, key), for values derived from a schema that callers only read.

    An evaluation parses every gold query against one `Schema` object per database many times (hardness, EM,
    each prediction); schemas are not changed once loaded. Entries hold their schema, so an id is never reused
    while its entry lives; past `_PER_SCHEMA_MAX` entries all are dropped.
    """
    hit = _per_schema.get((id(schema), key))
    if hit is not None and hit[0] is schema:
        return hit[1]
    if len(_per_schema) >= _PER_SCHEMA_MAX:
        _per_schema.clear()
    value = build()
    _per_schema[(id(schema), key)] = (schema, value)
    return value


def schema_map(schema: Schema) -> dict[str, set[str]]:
    """Lower-cased table -> lower-cased column names: identifiers are case-insensitive in SQLite (read-only)."""
    return per_schema(schema, "schema_map",
                      lambda: {t.name.lower(): {c.name.lower() for c in t.columns} for t in schema.tables})


def parse_sql(sql: str, schema: Schema | None = None) -> SqlDict:
    """Parse one query into the official structure; `SpiderParseError` when it cannot be represented."""
    tokens = tokenize(sql)
    if not tokens:
        raise SpiderParseError("empty SQL")
    parser = _Parser(tokens, schema_map(schema) if schema is not None else None)
    out = parser.parse_query(None)
    parser.skip_semicolons()
    if parser.i != len(tokens):
        parser.fail("unexpected text after the query")
    return out


@dataclass
class _Scope:
    """Names visible in one SELECT: its FROM tables and aliases, then its parent's (correlated sub-queries)."""

    parent: _Scope | None
    aliases: dict[str, str] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)  # the official "default tables", in FROM order
    derived: set[str] = field(default_factory=set)  # aliases of sub-queries in FROM: columns are not checkable
    select_aliases: dict[str, tuple] = field(default_factory=dict)


class _Parser:
    def __init__(self, tokens: list[Token], schema: dict[str, set[str]] | None) -> None:
        self.toks = tokens
        self.i = 0
        self.schema = schema

    # ---- token helpers -------------------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at_word(self, *words: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok is not None and tok.kind == "word" and tok.text in words

    def at_op(self, *ops: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok is not None and tok.kind == "op" and tok.text in ops

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            self.fail("unexpected end of SQL")
        self.i += 1
        return tok

    def expect_word(self, word: str) -> None:
        if not self.at_word(word):
            self.fail(f"expected {word.upper()}")
        self.i += 1

    def expect_op(self, op: str) -> None:
        if not self.at_op(op):
            self.fail(f"expected {op!r}")
        self.i += 1

    def skip_semicolons(self) -> None:
        while self.at_op(";"):
            self.i += 1

    def fail(self, msg: str) -> NoReturn:
        near = " ".join(t.text for t in self.toks[self.i : self.i + 5]) or "<end>"
        raise SpiderParseError(f"cannot parse SQL for Spider evaluation: {msg} near {near!r}")

    def at_identifier(self, k: int = 0) -> bool:
        tok = self.peek(k)
        if tok is None:
            return False
        return tok.kind in ("ident", "dq") or (tok.kind == "word" and tok.text not in _RESERVED)

    def take_identifier(self) -> str:
        if not self.at_identifier():
            self.fail("expected a name")
        tok = self.take()
        return tok.text.lower()

    # ---- queries -------------------------------------------------------------------------------------------
    def parse_query(self, parent: _Scope | None) -> SqlDict:
        """[(] core [)] [set-op query]: the right operand nests, as in the official parser."""
        if self.at_op("("):
            self.i += 1
            sql = self.parse_query(parent)
            self.skip_semicolons()
            self.expect_op(")")
        else:
            sql = self.parse_core(parent)
        self.skip_semicolons()
        if self.at_word(*SQL_OPS):
            op = self.take().text
            if self.at_word("all"):
                self.i += 1
            sql[op] = self.parse_query(parent)
        return sql

    def find_from(self) -> int | None:
        """Index of this SELECT's FROM: columns resolve against FROM tables, so FROM is read first."""
        depth = 0
        for j in range(self.i, len(self.toks)):
            tok = self.toks[j]
            if tok.kind == "op" and tok.text == "(":
                depth += 1
            elif tok.kind == "op" and tok.text == ")":
                if depth == 0:
                    return None
                depth -= 1
            elif depth == 0 and tok.kind == "op" and tok.text == ";":
                return None
            elif depth == 0 and tok.kind == "word":
                if tok.text == "from":
                    return j
                if tok.text in SQL_OPS:
                    return None
        return None

    def parse_core(self, parent: _Scope | None) -> SqlDict:
        sql = empty_sql()
        self.expect_word("select")
        distinct = self.at_word("distinct")
        if distinct or self.at_word("all"):
            self.i += 1
        scope = _Scope(parent)
        select_start, from_idx = self.i, self.find_from()
        from_end = None
        if from_idx is not None:
            self.i = from_idx + 1
            sql["from"] = self.parse_from(scope)
            from_end = self.i
            self.i = select_start
        sql["select"] = (distinct, self.parse_select_list(scope))
        if from_idx is not None:
            if self.i != from_idx:
                self.fail("unexpected text in the SELECT list")
            self.i = from_end
        if self.at_word("where"):
            self.i += 1
            sql["where"] = self.parse_conditions(scope)
        if self.at_word("group"):
            self.i += 1
            self.expect_word("by")
            sql["groupBy"] = self.parse_list(lambda: self.parse_col_unit(scope))
        if self.at_word("having"):
            self.i += 1
            sql["having"] = self.parse_conditions(scope)
        if self.at_word("order"):
            self.i += 1
            self.expect_word("by")
            sql["orderBy"] = self.parse_order_by(scope)
        if self.at_word("limit"):
            self.i += 1
            sql["limit"] = self.parse_limit()
        return sql

    def parse_list(self, item: Callable[[], Any]) -> list:
        out = [item()]
        while self.at_op(","):
            self.i += 1
            out.append(item())
        return out

    def parse_order_by(self, scope: _Scope) -> tuple[str, list]:
        """The official structure keeps one direction for all keys: the last one written (default asc)."""
        direction = "asc"
        units = []
        while True:
            units.append(self.parse_val_unit(scope))
            if self.at_word(*ORDER_OPS):
                direction = self.take().text
            if not self.at_op(","):
                return direction, units
            self.i += 1

    def parse_limit(self) -> int:
        """LIMIT n, LIMIT n OFFSET m, LIMIT m, n, recorded as 1 whatever n is.

        The official parser never converts the token after LIMIT, so it stores 1 for every LIMIT; EM thereby
        compares LIMIT by presence at every nesting level (sub-queries are compared as whole structures).
        """
        self.parse_int()
        if self.at_op(","):
            self.i += 1
            self.parse_int()
        elif self.at_word("offset"):
            self.i += 1
            self.parse_int()
        return 1

    def parse_int(self) -> int:
        tok = self.peek()
        if tok is None or tok.kind != "num":
            self.fail("expected a number")
        self.i += 1
        return int(float(tok.text))

    # ---- FROM ----------------------------------------------------------------------------------------------
    def parse_from(self, scope: _Scope) -> dict[str, list]:
        table_units: list = []
        conds: list = []
        while True:
            self.parse_table_item(scope, table_units)
            if self.at_word("on"):
                self.i += 1
                these = self.parse_conditions(scope)
                if conds:
                    conds.append("and")
                conds.extend(these)
            if self.at_op(","):
                # The official parser reads FROM as tables joined by JOIN only; it fails on a comma list.
                self.fail("comma-separated FROM tables: the official parser accepts only JOIN")
            if self.accept_join():
                continue
            return {"table_units": table_units, "conds": conds}

    def accept_join(self) -> bool:
        k = 0
        while self.at_word(*_JOIN_WORDS, k=k):
            k += 1
        if not self.at_word("join", k=k):
            return False
        self.i += k + 1
        return True

    def parse_alias(self) -> str | None:
        if self.at_word("as"):
            self.i += 1
            return self.take_identifier()
        if self.at_identifier():
            return self.take_identifier()
        return None

    def parse_table_item(self, scope: _Scope, table_units: list) -> None:
        if self.at_op("("):
            if not (self.at_word("select", k=1) or self.at_op("(", k=1)):
                self.fail("parenthesised joins are not supported")
            self.i += 1
            # A FROM sub-query sees the enclosing query's names, not its sibling tables.
            sub = self.parse_query(scope.parent)
            self.expect_op(")")
            table_units.append((TABLE_SQL, sub))
            alias = self.parse_alias()
            if alias is not None:
                scope.aliases[alias] = alias
                scope.derived.add(alias)
                scope.tables.append(alias)
            return
        name = self.take_identifier()
        if self.schema is not None and name not in self.schema:
            self.i -= 1
            self.fail(f"unknown table {name!r}")
        alias = self.parse_alias()
        scope.aliases[name] = name
        if alias is not None:
            scope.aliases[alias] = name
        scope.tables.append(name)
        table_units.append((TABLE_UNIT, f"__{name}__"))

    # ---- columns -------------------------------------------------------------------------------------------
    def lookup_alias(self, scope: _Scope | None, alias: str) -> tuple[str, bool] | None:
        while scope is not None:
            if alias in scope.aliases:
                table = scope.aliases[alias]
                return table, table in scope.derived
            scope = scope.parent
        return None

    def resolve_qualified(self, scope: _Scope, alias: str, col: str) -> str:
        found = self.lookup_alias(scope, alias)
        if found is None:
            if self.schema is not None and alias not in self.schema:
                self.fail(f"unknown table or alias {alias!r}")
            found = (alias, False)
        table, derived = found
        if self.schema is not None and not derived and col not in self.schema.get(table, ()):
            self.fail(f"unknown column {table}.{col}")
        return f"__{table}.{col}__"

    def resolve_unqualified(self, scope: _Scope, col: str) -> str | None:
        """The official rule: the first FROM table (in order) that has the column; then enclosing queries."""
        if self.schema is None:
            s: _Scope | None = scope
            while s is not None and not s.tables:
                s = s.parent
            return f"__{s.tables[0]}.{col}__" if s is not None else f"__{col}__"
        s = scope
        while s is not None:
            for table in s.tables:
                if table not in s.derived and col in self.schema.get(table, ()):
                    return f"__{table}.{col}__"
            s = s.parent
        derived = [t for t in scope.tables if t in scope.derived]
        return f"__{derived[0]}.{col}__" if derived else None

    def parse_col(self, scope: _Scope) -> str:
        if self.at_op("*"):
            self.i += 1
            return ALL_COLUMNS
        start = self.i
        name = self.take_identifier()
        if self.at_op("."):
            self.i += 1
            if self.at_op("*"):
                self.i += 1
                return ALL_COLUMNS
            return self.resolve_qualified(scope, name, self.take_identifier())
        col_id = self.resolve_unqualified(scope, name)
        if col_id is None:
            self.i = start
            self.fail(f"unknown column {name!r}")
        return col_id

    def parse_col_unit(self, scope: _Scope) -> tuple:
        if self.at_op("("):
            self.i += 1
            unit = self.parse_col_unit(scope)
            self.expect_op(")")
            return unit
        if self.at_word(*AGG_OPS[1:]) and self.at_op("(", k=1):
            agg = AGG_OPS.index(self.take().text)
            self.i += 1
            distinct = self.at_word("distinct")
            if distinct:
                self.i += 1
                self.no_second_distinct()
            col = self.parse_col(scope)
            self.expect_op(")")
            return (agg, col, distinct)
        distinct = self.at_word("distinct")
        if distinct:
            self.i += 1
            self.no_second_distinct()
        return (0, self.parse_col(scope), distinct)

    def no_second_distinct(self) -> None:
        """`count(DISTINCT DISTINCT x)`: the official parser reads the second DISTINCT as a column and fails."""
        if self.at_word("distinct"):
            self.fail("DISTINCT twice")

    def select_alias(self, scope: _Scope) -> tuple | None:
        """`ORDER BY total` where `total` names a select item (not a column): use that item's expression."""
        tok = self.peek()
        if tok is None or not self.at_identifier() or self.at_op(".", "(", k=1):
            return None
        name = tok.text.lower()
        if name not in scope.select_aliases:
            return None
        if self.schema is not None and self.resolve_unqualified(scope, name) is not None:
            return None
        agg, val_unit = scope.select_aliases[name]
        if agg == 0:
            self.i += 1
            return val_unit
        if val_unit[0] != 0:
            self.fail("aggregate of an expression used through an alias")
        self.i += 1
        col = val_unit[1]
        return (0, (agg, col[1], col[2]), None)

    def parse_val_unit(self, scope: _Scope) -> tuple:
        aliased = self.select_alias(scope)
        if aliased is not None:
            return aliased
        if self.at_op("(") and not self.at_word("select", k=1):
            save = self.i
            self.i += 1
            try:
                unit = self.parse_val_unit(scope)
                self.expect_op(")")
                if not self.at_op(*UNIT_OPS[1:]):
                    return unit
            except SpiderParseError:
                pass
            self.i = save
        unit1 = self.parse_col_unit(scope)
        if self.at_op(*UNIT_OPS[1:]):
            op = UNIT_OPS.index(self.take().text)
            return (op, unit1, self.parse_col_unit(scope))
        return (0, unit1, None)

    # ---- SELECT list ---------------------------------------------------------------------------------------
    def parse_select_list(self, scope: _Scope) -> list[tuple]:
        items = []
        while True:
            item = self.parse_select_item(scope)
            items.append(item)
            alias = self.parse_alias()
            if alias is not None:
                scope.select_aliases[alias] = item
            if not self.at_op(","):
                return items
            self.i += 1
            if self.at_word(*_CLAUSE_WORDS):  # `SELECT a, FROM t`: the official parser stops at the clause
                return items

    def parse_select_item(self, scope: _Scope) -> tuple:
        """`agg(expr)` keeps the aggregate outside the val_unit, as the official parser does for SELECT."""
        if not (self.at_word(*AGG_OPS[1:]) and self.at_op("(", k=1)):
            return (0, self.parse_val_unit(scope))
        agg = AGG_OPS.index(self.take().text)
        self.i += 1
        distinct = self.at_word("distinct")
        if distinct:
            self.i += 1
            self.no_second_distinct()
        op, unit1, unit2 = self.parse_val_unit(scope)
        if distinct:
            unit1 = (unit1[0], unit1[1], True)
        self.expect_op(")")
        if not self.at_op(*UNIT_OPS[1:]):
            return (agg, (op, unit1, unit2))
        # `max(a) - min(a)`: not in the official grammar; the aggregates move into the col_units.
        if op != 0 or unit1[0] != 0:
            self.fail("arithmetic on an aggregate of an expression")
        op2 = UNIT_OPS.index(self.take().text)
        return (0, (op2, (agg, unit1[1], unit1[2]), self.parse_col_unit(scope)))

    # ---- conditions ----------------------------------------------------------------------------------------
    def parse_conditions(self, scope: _Scope) -> list:
        conds: list = []
        while True:
            conds.extend(self.parse_condition_term(scope))
            if not self.at_word("and", "or"):
                return conds
            conds.append(self.take().text)

    def parse_condition_term(self, scope: _Scope) -> list:
        """A parenthesised group is flattened: the official structure has no nesting of and/or."""
        if self.at_op("(") and not self.at_word("select", k=1):
            save = self.i
            self.i += 1
            try:
                inner = self.parse_conditions(scope)
                self.expect_op(")")
                return inner
            except SpiderParseError:
                self.i = save
        return [self.parse_cond_unit(scope)]

    def parse_cond_unit(self, scope: _Scope) -> tuple:
        not_op = False
        if self.at_word("not"):
            self.i += 1
            not_op = True
        if self.at_word("exists"):
            self.i += 1
            return (not_op, WHERE_OPS.index("exists"), None, self.parse_value(scope), None)
        val_unit = self.parse_val_unit(scope)
        if self.at_word("not"):
            self.i += 1
            not_op = not not_op
        tok = self.peek()
        if tok is None or not (self.at_word("between", "in", "like", "is") or self.at_op(*_CMP_OPS)):
            self.fail("expected a comparison operator")
        self.i += 1
        op_id = WHERE_OPS.index(tok.text)
        if tok.text == "is" and self.at_word("not"):
            self.i += 1
            not_op = not not_op
        val1 = self.parse_value(scope)
        val2 = None
        if tok.text == "between":
            self.expect_word("and")
            val2 = self.parse_value(scope)
        return (not_op, op_id, val_unit, val1, val2)

    def parse_value(self, scope: _Scope) -> Any:
        """A literal, a sub-query (dict), a column (col_unit) or a literal list (tuple)."""
        tok = self.peek()
        if tok is None:
            self.fail("expected a value")
        if self.at_op("("):
            self.i += 1
            if self.at_word("select") or self.at_op("("):
                value: Any = self.parse_query(scope)
            else:
                items = self.parse_list(lambda: self.parse_value(scope))
                value = items[0] if len(items) == 1 else tuple(items)
            self.expect_op(")")
            return value
        if self.at_word("select"):
            return self.parse_query(scope)
        if tok.kind == "str":
            self.i += 1
            return '"' + tok.text[1:-1].replace("''", "'") + '"'
        if tok.kind == "dq":
            self.i += 1
            return '"' + tok.text + '"'
        if tok.kind == "num":
            self.i += 1
            return float(tok.text)
        after = self.peek(1)
        if self.at_op("-", "+") and after is not None and after.kind == "num":
            sign = -1.0 if self.take().text == "-" else 1.0
            return sign * float(self.take().text)
        if self.at_word(*_LITERAL_WORDS) and (self.schema is None or self.resolve_unqualified(scope, tok.text) is None):
            self.i += 1
            return tok.text
        return self.parse_col_unit(scope)
