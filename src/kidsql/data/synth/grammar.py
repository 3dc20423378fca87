"""SQL shapes and their question phrasings.

Every shape builds a small `Select` tree (so the SQL is always rendered in one canonical style: upper-case
keywords, `T1`/`T2` aliases for joins, single-quoted strings) and a question assembled through a `Lexicon`.
Robustness variants (`variants.py`) re-run the same shape with the same random stream and another lexicon, so
the SQL is identical and only the words that name the schema, the value's column or a piece of domain
knowledge change.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Callable, Union

from .content import Rows
from .domains import ColumnDef, DomainDef, TableDef

AGGS = {"AVG": "average", "MAX": "maximum", "MIN": "minimum", "SUM": "total"}
OP_WORDS = {"=": "is", "!=": "is not", ">": "is greater than", "<": "is less than", ">=": "is at least", "<=": "is at most"}
DATE_OP_WORDS = {">": "is after", "<": "is before", ">=": "is on or after", "<=": "is on or before", "=": "is"}
_AGG_RE = re.compile(r"\b(COUNT|AVG|MAX|MIN|SUM)\(")


def lit(v: object) -> str:
    """SQL literal in the canonical style."""
    return "'" + str(v).replace("'", "''") + "'" if isinstance(v, str) else str(v)


@dataclass
class Cond:
    left: str
    op: str
    right: Union[str, "Select"]

    def sql(self) -> str:
        right = f"({self.right.sql()})" if isinstance(self.right, Select) else self.right
        return f"{self.left} {self.op} {right}"


@dataclass
class Select:
    items: list[str]
    from_: str
    n_tables: int = 1
    where: list[Cond] = field(default_factory=list)
    group_by: list[str] = field(default_factory=list)
    having: list[Cond] = field(default_factory=list)
    order_by: list[str] = field(default_factory=list)
    limit: int | None = None
    distinct: bool = False
    setop: tuple[str, "Select"] | None = None

    def sql(self) -> str:
        s = f"SELECT {'DISTINCT ' if self.distinct else ''}{', '.join(self.items)} FROM {self.from_}"
        if self.where:
            s += " WHERE " + " AND ".join(c.sql() for c in self.where)
        if self.group_by:
            s += " GROUP BY " + ", ".join(self.group_by)
        if self.having:
            s += " HAVING " + " AND ".join(c.sql() for c in self.having)
        if self.order_by:
            s += " ORDER BY " + ", ".join(self.order_by)
        if self.limit is not None:
            s += f" LIMIT {self.limit}"
        if self.setop:
            s += f" {self.setop[0]} {self.setop[1].sql()}"
        return s

    def hardness(self) -> str:
        """Spider's hardness rules (Yu et al. 2018, evaluation.py) on this tree; steers the grammar weights.
        The evaluator's own `kidsql.sql.hardness` is the judge; this is the generator's estimate."""
        comp1 = sum(bool(x) for x in (self.where, self.group_by, self.order_by)) + (self.limit is not None)
        comp1 += self.n_tables - 1
        comp1 += sum(c.op in ("LIKE", "NOT LIKE") for c in self.where + self.having)
        nested = [c for c in self.where + self.having if isinstance(c.right, Select)]
        comp2 = len(nested) + (self.setop is not None)
        aggs = sum(len(_AGG_RE.findall(x)) for x in self.items + self.group_by + self.order_by)
        aggs += sum(bool(_AGG_RE.search(c.left)) for c in self.where + self.having)
        others = (aggs > 1) + (len(self.items) > 1) + (len(self.where) > 1) + (len(self.group_by) > 1)
        if comp1 <= 1 and others == 0 and comp2 == 0:
            return "easy"
        if (others <= 2 and comp1 <= 1 and comp2 == 0) or (comp1 <= 2 and others < 2 and comp2 == 0):
            return "medium"
        if ((others > 2 and comp1 <= 2 and comp2 == 0) or (2 < comp1 <= 3 and others <= 2 and comp2 == 0)
                or (comp1 <= 1 and others == 0 and comp2 <= 1)):
            return "hard"
        return "extra"


def plural(word: str) -> str:
    """English plural of a (possibly multi-word) noun phrase: inflect the head noun."""
    if " of " in word:
        head, _, tail = word.partition(" of ")
        return f"{plural(head)} of {tail}"
    if re.search(r"(s|x|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


class Lexicon:
    """How schema elements, conditions and superlatives are worded. The base lexicon names every column
    explicitly; variant lexicons override single methods and record what they changed in `changes`."""

    def __init__(self) -> None:
        self.changes: list[dict[str, str]] = []

    def t(self, table: TableDef) -> str:
        return table.natural

    def T(self, table: TableDef) -> str:
        return plural(table.natural)

    def c(self, col: ColumnDef) -> str:
        return col.natural

    def cond(self, col: ColumnDef, op: str, value: str, owner: TableDef | None = None) -> str:
        who = f"whose {self.t(owner)} {self.c(col)}" if owner else f"whose {self.c(col)}"
        if op == "LIKE":
            return f"{who} contains '{value}'"
        if op == "BETWEEN":
            return f"{who} is between {value}"
        if op == "IN":
            return f"{who} is {value}"
        words = DATE_OP_WORDS if col.role == "date" else OP_WORDS
        return f"{who} {words[op]} {value}"

    def agg(self, func: str, col: ColumnDef, table: TableDef, link: str) -> str:
        """An aggregate of `col` over `table`, as "maximum price of all products" (`link` = "of all"). A
        method of its own so that `dev_dk` can word MAX/MIN of a column as a superlative of the table."""
        return f"{AGGS[func]} {self.c(col)} {link} {self.T(table)}"

    def sup(self, subject: str, col: ColumnDef, desc: bool, owner: TableDef | None = None) -> str:
        """`subject` with the highest/lowest value of `col`; `owner` when the column belongs to a joined table."""
        word = ("latest" if desc else "earliest") if col.role == "date" else ("highest" if desc else "lowest")
        if owner:
            return f"{subject} whose {self.t(owner)} has the {word} {self.c(col)}"
        return f"{subject} with the {word} {self.c(col)}"


@dataclass
class Ctx:
    dom: DomainDef
    rows: Rows
    rng: random.Random
    lex: Lexicon
    value_pool: int | None = None  # questions use only this many values per column (spread over its range)

    def choice(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def all_values(self, table: TableDef, col: ColumnDef) -> list:
        """The column's value in every row, whatever the value pool."""
        return [r[col.name] for r in self.rows[table.name]]

    def values(self, table: TableDef, col: ColumnDef) -> list:
        """The values questions may use: every row's, or only those in the pool (`value_pool`)."""
        vals = self.all_values(table, col)
        if self.value_pool is None:
            return vals
        distinct = sorted({v for v in vals if v is not None}, key=lambda v: (str(type(v)), v))
        if len(distinct) <= self.value_pool:
            return vals
        step = len(distinct) / self.value_pool
        keep = {distinct[int(step * (i + 0.5))] for i in range(self.value_pool)}
        return [v for v in vals if v in keep]

    def tables(self, *roles: str, junction: bool = False) -> list[TableDef]:
        return [t for t in self.dom.tables if (junction or not t.is_junction) and all(t.by_role(r) for r in roles)]


class Skip(Exception):
    """The shape does not fit this database (or this draw); the caller redraws."""


def _need(seq: list):
    if not seq:
        raise Skip
    return seq


def proj(t: TableDef) -> list[ColumnDef]:
    """Columns a question may ask for: labels when the table has them, else any non-key column."""
    return t.by_role("label") or [c for c in t.columns if c.role not in ("key",)]


def ref(col: ColumnDef, alias: str | None) -> str:
    return f"{alias}.{col.name}" if alias else col.name


def make_cond(ctx: Ctx, t: TableDef, col: ColumnDef, alias: str | None = None,
              owner: TableDef | None = None) -> tuple[Cond, str]:
    """A WHERE condition on `col` with a value drawn from the data (so results are rarely empty) and its phrase."""
    vals = ctx.values(t, col)
    if col.role in ("label", "category"):
        v = ctx.choice(vals)
        return Cond(ref(col, alias), "=", lit(v)), ctx.lex.cond(col, "=", str(v), owner)
    ages = ctx.all_values(t, col) if col.natural == "age" else []  # all rows, not the value pool
    if ages and min(ages) < 18 <= max(ages) and ctx.rng.random() < 0.4:
        op = ctx.choice([">=", "<"])  # the thresholds `dev_dk` can word as "adults"/"minors"
        return Cond(ref(col, alias), op, "18"), ctx.lex.cond(col, op, "18", owner)
    s = sorted(vals)
    v = s[ctx.rng.randrange(len(s) // 5, max(len(s) // 5 + 1, 4 * len(s) // 5))]
    if col.role == "number":
        v = int(v)
    op = ctx.choice([">", "<", ">=", "<="] if col.role == "number" else [">", "<"])
    return Cond(ref(col, alias), op, lit(v)), ctx.lex.cond(col, op, str(v), owner)


def cond_col(ctx: Ctx, t: TableDef, exclude: ColumnDef | None = None) -> ColumnDef:
    cols = [c for c in t.columns if c.role != "key" and c != exclude]
    cats = [c for c in cols if c.role == "category"]
    if cats and ctx.rng.random() < 0.45:  # equality on categories is the most common filter in Spider
        return ctx.choice(cats)
    return ctx.choice(_need(cols))


def fk_pair(ctx: Ctx, child_labels: bool = False, parent_labels: bool = True):
    """(child, fk column, parent) with the parent having a primary key."""
    pairs = [(c, fk, p) for c, fk, p in ctx.dom.fks()
             if (not child_labels or not c.is_junction) and (not parent_labels or proj(p))]
    return ctx.choice(_need(pairs))


def join(child: TableDef, fk: ColumnDef, parent: TableDef, child_first: bool = True) -> str:
    pk = parent.pk.name
    if child_first:
        return f"{child.name} AS T1 JOIN {parent.name} AS T2 ON T1.{fk.name} = T2.{pk}"
    return f"{parent.name} AS T1 JOIN {child.name} AS T2 ON T1.{pk} = T2.{fk.name}"


def numbers(t: TableDef) -> list[ColumnDef]:
    return t.by_role("number")


# ---------------------------------------------------------------- shapes (each returns (Select, question))

Shape = Callable[[Ctx], tuple[Select, str]]


def e_proj(ctx: Ctx):
    t = ctx.choice(ctx.tables()); p = ctx.choice(proj(t))
    q = ctx.choice(["List the {p} of all {T}.", "What is the {p} of each {t}?", "Show the {p} of every {t}."])
    return Select([p.name], t.name), q.format(p=ctx.lex.c(p), T=ctx.lex.T(t), t=ctx.lex.t(t))


def e_count(ctx: Ctx):
    t = ctx.choice(ctx.tables(junction=True))
    q = ctx.choice(["How many {T} are there?", "Count the number of {T}.", "What is the total number of {T}?"])
    return Select(["COUNT(*)"], t.name), q.format(T=ctx.lex.T(t))


def e_agg(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); n = ctx.choice(numbers(t)); f = ctx.choice(list(AGGS))
    q, link = ctx.choice([("What is the {x}?", "of all"), ("Find the {x}.", "across all"), ("Show the {x}.", "of the")])
    return Select([f"{f}({n.name})"], t.name), q.format(x=ctx.lex.agg(f, n, t, link))


def e_where(ctx: Ctx):
    t = ctx.choice(ctx.tables()); p = ctx.choice(proj(t))
    cond, phrase = make_cond(ctx, t, cond_col(ctx, t, exclude=p))
    q = ctx.choice(["List the {p} of all {T} {w}.", "What is the {p} of the {T} {w}?", "Show the {p} of {T} {w}."])
    return Select([p.name], t.name, where=[cond]), q.format(p=ctx.lex.c(p), T=ctx.lex.T(t), w=phrase)


def e_count_where(ctx: Ctx):
    t = ctx.choice(ctx.tables())
    cond, phrase = make_cond(ctx, t, cond_col(ctx, t))
    q = ctx.choice(["How many {T} are there {w}?", "Count the {T} {w}.", "What is the number of {T} {w}?"])
    return Select(["COUNT(*)"], t.name, where=[cond]), q.format(T=ctx.lex.T(t), w=phrase)


def e_agg_where(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); n = ctx.choice(numbers(t)); f = ctx.choice(list(AGGS))
    cond, phrase = make_cond(ctx, t, cond_col(ctx, t, exclude=n))
    q, link = ctx.choice([("What is the {x} {w}?", "of"), ("Find the {x} {w}.", "of all")])
    return Select([f"{f}({n.name})"], t.name, where=[cond]), q.format(x=ctx.lex.agg(f, n, t, link), w=phrase)


def e_distinct(ctx: Ctx):
    t = ctx.choice(ctx.tables("category")); c = ctx.choice(t.by_role("category"))
    q = ctx.choice(["List the distinct {c} of all {T}.", "What are the different {c} values of the {T}?",
                    "Show every distinct {c} among the {T}."])
    return Select([c.name], t.name, distinct=True), q.format(c=ctx.lex.c(c), T=ctx.lex.T(t))


def e_order(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); p = ctx.choice(proj(t)); n = ctx.choice(numbers(t))
    desc = ctx.rng.random() < 0.5
    q = ctx.choice(["List the {p} of all {T} sorted by {c} in {d} order.", "Show the {p} of the {T} ordered by {c}, {d2}."])
    return (Select([p.name], t.name, order_by=[f"{n.name} {'DESC' if desc else 'ASC'}"]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(t), c=ctx.lex.c(n), d="descending" if desc else "ascending",
                     d2="highest first" if desc else "lowest first"))


def e_between(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); p = ctx.choice(proj(t)); n = ctx.choice(numbers(t))
    s = sorted(int(v) for v in ctx.values(t, n))
    a, b = s[len(s) // 4], s[3 * len(s) // 4]
    if a == b:
        raise Skip
    q = ctx.choice(["List the {p} of {T} {w}.", "What is the {p} of the {T} {w}?"])
    return (Select([p.name], t.name, where=[Cond(n.name, "BETWEEN", f"{a} AND {b}")]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(t), w=ctx.lex.cond(n, "BETWEEN", f"{a} and {b}")))


def e_in(ctx: Ctx):
    t = ctx.choice(ctx.tables("category")); c = ctx.choice(t.by_role("category")); p = ctx.choice(proj(t))
    vals = sorted(set(ctx.values(t, c)))
    if len(vals) < 2 or p == c:
        raise Skip
    a, b = ctx.rng.sample(vals, 2)
    q = ctx.choice(["List the {p} of {T} {w}.", "Show the {p} of all {T} {w}."])
    return (Select([p.name], t.name, where=[Cond(c.name, "IN", f"({lit(a)}, {lit(b)})")]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(t), w=ctx.lex.cond(c, "IN", f"{a} or {b}")))


def m_two_cols_where(ctx: Ctx):
    t = ctx.choice(ctx.tables()); p = ctx.choice(proj(t))
    x = ctx.choice(_need([c for c in t.columns if c.role not in ("key",) and c != p]))
    cond, phrase = make_cond(ctx, t, cond_col(ctx, t, exclude=x))
    q = ctx.choice(["What are the {p} and {x} of {T} {w}?", "Show the {p} and {x} of all {T} {w}."])
    return (Select([p.name, x.name], t.name, where=[cond]),
            q.format(p=ctx.lex.c(p), x=ctx.lex.c(x), T=ctx.lex.T(t), w=phrase))


def m_sup(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); p = ctx.choice(proj(t)); n = ctx.choice(numbers(t) + t.by_role("date"))
    desc = ctx.rng.random() < 0.6
    q = ctx.choice(["What is the {p} of {s}?", "Show the {p} of {s}.", "Find the {p} of {s}."])
    return (Select([p.name], t.name, order_by=[f"{n.name} {'DESC' if desc else 'ASC'}"], limit=1),
            q.format(p=ctx.lex.c(p), s=ctx.lex.sup(f"the {ctx.lex.t(t)}", n, desc)))


def m_topk(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); p = ctx.choice(proj(t)); n = ctx.choice(numbers(t))
    k = ctx.choice([2, 3, 5]); desc = ctx.rng.random() < 0.6
    words = {2: "two", 3: "three", 5: "five"}
    q = ctx.choice(["List the {p} of {s}.", "Show the {p} of {s}."])
    return (Select([p.name], t.name, order_by=[f"{n.name} {'DESC' if desc else 'ASC'}"], limit=k),
            q.format(p=ctx.lex.c(p), s=ctx.lex.sup(f"the {words[k]} {ctx.lex.T(t)}", n, desc)))


def m_group_count(ctx: Ctx):
    t = ctx.choice(ctx.tables("category")); c = ctx.choice(t.by_role("category"))
    q = ctx.choice(["How many {T} are there for each {c}?", "Show each {c} and the number of {T} with it.",
                    "For each {c}, count the {T}."])
    return Select([c.name, "COUNT(*)"], t.name, group_by=[c.name]), q.format(c=ctx.lex.c(c), T=ctx.lex.T(t))


def m_group_agg(ctx: Ctx):
    t = ctx.choice(ctx.tables("category", "number")); c = ctx.choice(t.by_role("category"))
    n = ctx.choice(numbers(t)); f = ctx.choice(["AVG", "MAX", "MIN"])
    q = ctx.choice(["What is the {a} {n} of {T} for each {c}?", "For each {c}, show the {a} {n} of the {T}."])
    return (Select([c.name, f"{f}({n.name})"], t.name, group_by=[c.name]),
            q.format(a=AGGS[f], n=ctx.lex.c(n), c=ctx.lex.c(c), T=ctx.lex.T(t)))


def m_like(ctx: Ctx):
    t = ctx.choice(ctx.tables("label")); p = ctx.choice(t.by_role("label"))
    word = ctx.choice(str(ctx.choice(ctx.values(t, p))).split())
    if len(word) < 4:
        raise Skip
    i = ctx.rng.randrange(len(word) - 2); sub = word[i:i + ctx.choice([3, 4])]
    q = ctx.choice(["List the {p} of all {T} {w}.", "Which {T} have a {p} that contains '{s}'?"])
    return (Select([p.name], t.name, where=[Cond(p.name, "LIKE", lit(f"%{sub}%"))]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(t), s=sub, w=ctx.lex.cond(p, "LIKE", sub)))


def m_two_conds(ctx: Ctx):
    t = ctx.choice(ctx.tables()); p = ctx.choice(proj(t))
    c1 = cond_col(ctx, t, exclude=p); c2 = cond_col(ctx, t, exclude=c1)
    if c2 == p:
        raise Skip
    (k1, w1), (k2, w2) = make_cond(ctx, t, c1), make_cond(ctx, t, c2)
    q = ctx.choice(["List the {p} of {T} {w1} and {w2}.", "What is the {p} of the {T} {w1} and {w2}?"])
    return Select([p.name], t.name, where=[k1, k2]), q.format(p=ctx.lex.c(p), T=ctx.lex.T(t), w1=w1, w2=w2)


def m_minmax(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); n = ctx.choice(numbers(t))
    q = ctx.choice(["What are the minimum and maximum {c} of all {T}?", "Show the lowest and highest {c} among the {T}."])
    return Select([f"MIN({n.name})", f"MAX({n.name})"], t.name), q.format(c=ctx.lex.c(n), T=ctx.lex.T(t))


def m_join_child(ctx: Ctx):
    """Child rows filtered by their parent: `concerts whose stadium location is Berlin`."""
    child, fk, parent = fk_pair(ctx, child_labels=True)
    p = ctx.choice(proj(child)); col = cond_col(ctx, parent)
    cond, phrase = make_cond(ctx, parent, col, "T2", owner=parent)
    q = ctx.choice(["List the {p} of {T} {w}.", "Show the {p} of all {T} {w}."])
    return (Select([f"T1.{p.name}"], join(child, fk, parent), 2, where=[cond]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(child), w=phrase))


def m_join_parent(ctx: Ctx):
    """Parent rows that have a matching child: `stadiums that have a concert whose year is 2014`."""
    child, fk, parent = fk_pair(ctx)
    p = ctx.choice(proj(parent))
    col = ctx.choice(_need([c for c in child.columns if c.role != "key"]))
    cond, phrase = make_cond(ctx, child, col, "T2")
    q = ctx.choice(["List the {p} of {T} that have a {c} {w}.", "Show the {p} of all {T} that have a {c} {w}."])
    return (Select([f"T1.{p.name}"], join(child, fk, parent, child_first=False), 2, where=[cond], distinct=True),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(parent), c=ctx.lex.t(child), w=phrase))


def m_join_proj(ctx: Ctx):
    child, fk, parent = fk_pair(ctx, child_labels=True)
    p1, p2 = ctx.choice(proj(child)), ctx.choice(proj(parent))
    q = ctx.choice(["Show the {p1} of each {t1} and the {p2} of its {t2}.", "List every {t1} {p1} with its {t2} {p2}."])
    return (Select([f"T1.{p1.name}", f"T2.{p2.name}"], join(child, fk, parent), 2),
            q.format(p1=ctx.lex.c(p1), p2=ctx.lex.c(p2), t1=ctx.lex.t(child), t2=ctx.lex.t(parent)))


def m_count_join(ctx: Ctx):
    child, fk, parent = fk_pair(ctx)
    cond, phrase = make_cond(ctx, parent, cond_col(ctx, parent), "T2", owner=parent)
    q = ctx.choice(["How many {T} are there {w}?", "Count the {T} {w}."])
    return Select(["COUNT(*)"], join(child, fk, parent), 2, where=[cond]), q.format(T=ctx.lex.T(child), w=phrase)


def m_where_order(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); p = ctx.choice(proj(t)); n = ctx.choice(numbers(t))
    cond, phrase = make_cond(ctx, t, cond_col(ctx, t, exclude=n))
    desc = ctx.rng.random() < 0.5
    q = "List the {p} of {T} {w}, sorted by {c} in {d} order."
    return (Select([p.name], t.name, where=[cond], order_by=[f"{n.name} {'DESC' if desc else 'ASC'}"]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(t), w=phrase, c=ctx.lex.c(n), d="descending" if desc else "ascending"))


def h_above_avg(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); p = ctx.choice(proj(t)); n = ctx.choice(numbers(t))
    above = ctx.rng.random() < 0.6
    q = ctx.choice(["List the {p} of {T} whose {c} is {ab} the average {c}.",
                    "Which {T} have a {c} {ab} the average? Give their {p}."])
    return (Select([p.name], t.name, where=[Cond(n.name, ">" if above else "<", Select([f"AVG({n.name})"], t.name))]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(t), c=ctx.lex.c(n), ab="above" if above else "below"))


def h_not_in(ctx: Ctx):
    child, fk, parent = fk_pair(ctx)
    p = ctx.choice(proj(parent))
    q = ctx.choice(["List the {p} of {T} that have no {c}.", "Show the {p} of all {T} without any {c}."])
    return (Select([p.name], parent.name, where=[Cond(parent.pk.name, "NOT IN", Select([fk.name], child.name))]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(parent), c=ctx.lex.t(child)))


def h_in_sub(ctx: Ctx):
    child, fk, parent = fk_pair(ctx)
    p = ctx.choice(proj(parent))
    col = ctx.choice(_need([c for c in child.columns if c.role != "key"]))
    cond, phrase = make_cond(ctx, child, col)
    q = "Which {T} have at least one {c} {w}? List their {p}."
    return (Select([p.name], parent.name,
                   where=[Cond(parent.pk.name, "IN", Select([fk.name], child.name, where=[cond]))]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(parent), c=ctx.lex.t(child), w=phrase))


SETOPS = {"INTERSECT": "List the {p} of {T} {w1} that are also {T} {w2}.",
          "UNION": "List the {p} of {T} {w1}, together with those {w2}.",
          "EXCEPT": "List the {p} of {T} {w1}, except those {w2}."}


def h_setop(ctx: Ctx):
    t = ctx.choice(ctx.tables()); p = ctx.choice(proj(t)); op = ctx.choice(list(SETOPS))
    c1 = cond_col(ctx, t, exclude=p); c2 = cond_col(ctx, t, exclude=p)
    (k1, w1), (k2, w2) = make_cond(ctx, t, c1), make_cond(ctx, t, c2)
    if k1 == k2:
        raise Skip
    return (Select([p.name], t.name, where=[k1], setop=(op, Select([p.name], t.name, where=[k2]))),
            SETOPS[op].format(p=ctx.lex.c(p), T=ctx.lex.T(t), w1=w1, w2=w2))


def h_group_top(ctx: Ctx):
    t = ctx.choice(ctx.tables("category")); c = ctx.choice(t.by_role("category"))
    most = ctx.rng.random() < 0.7
    q = ctx.choice(["Which {c} has the {m} {T}?", "What is the {c} with the {m} {T}?"])
    return (Select([c.name], t.name, group_by=[c.name], order_by=[f"COUNT(*) {'DESC' if most else 'ASC'}"], limit=1),
            q.format(c=ctx.lex.c(c), T=ctx.lex.T(t), m="most" if most else "fewest"))


def e_group_having(ctx: Ctx):
    t = ctx.choice(ctx.tables("category")); c = ctx.choice(t.by_role("category"))
    k = ctx.choice([2, 3, 4])
    q = ctx.choice(["Which {c} values have at least {k} {T}?", "List each {c} shared by at least {k} {T}."])
    return (Select([c.name], t.name, group_by=[c.name], having=[Cond("COUNT(*)", ">=", str(k))]),
            q.format(c=ctx.lex.c(c), T=ctx.lex.T(t), k=k))


def h_join_sup(ctx: Ctx):
    child, fk, parent = fk_pair(ctx, child_labels=True)
    p = ctx.choice(proj(child)); n = ctx.choice(_need(numbers(parent)))
    desc = ctx.rng.random() < 0.6
    q = ctx.choice(["What is the {p} of {s}?", "Show the {p} of {s}."])
    return (Select([f"T1.{p.name}"], join(child, fk, parent), 2, order_by=[f"T2.{n.name} {'DESC' if desc else 'ASC'}"],
                   limit=1),
            q.format(p=ctx.lex.c(p), s=ctx.lex.sup(f"the {ctx.lex.t(child)}", n, desc, owner=parent)))


def h_where_sup(ctx: Ctx):
    t = ctx.choice(ctx.tables("number")); p = ctx.choice(proj(t)); n = ctx.choice(numbers(t))
    cond, phrase = make_cond(ctx, t, cond_col(ctx, t, exclude=n))
    desc = ctx.rng.random() < 0.6
    q = "Among the {T} {w}, what is the {p} of {s}?"
    return (Select([p.name], t.name, where=[cond], order_by=[f"{n.name} {'DESC' if desc else 'ASC'}"], limit=1),
            q.format(T=ctx.lex.T(t), w=phrase, p=ctx.lex.c(p), s=ctx.lex.sup("the one", n, desc)))


def h_three_join(ctx: Ctx):
    """Through a table with two foreign keys: `vets that have a visit with the pet whose name is Rex`."""
    links = [(j, a, b) for j in ctx.dom.tables for a in j.columns for b in j.columns
             if a.kind == b.kind == "fk" and a.arg != b.arg and proj(ctx.dom.table(b.arg))]
    j, fa, fb = ctx.choice(_need(links))
    ta, tb = ctx.dom.table(fa.arg), ctx.dom.table(fb.arg)
    p = ctx.choice(proj(tb))
    cond, phrase = make_cond(ctx, ta, cond_col(ctx, ta), "T1")
    frm = (f"{ta.name} AS T1 JOIN {j.name} AS T2 ON T1.{ta.pk.name} = T2.{fa.name} "
           f"JOIN {tb.name} AS T3 ON T2.{fb.name} = T3.{tb.pk.name}")
    q = "List the {p} of {TB} that have a {tj} with a {ta} {w}."
    return (Select([f"T3.{p.name}"], frm, 3, where=[cond], distinct=True),
            q.format(p=ctx.lex.c(p), TB=ctx.lex.T(tb), tj=ctx.lex.t(j), ta=ctx.lex.t(ta), w=phrase))


def x_join_group_top(ctx: Ctx):
    child, fk, parent = fk_pair(ctx)
    p = ctx.choice(proj(parent)); most = ctx.rng.random() < 0.7
    q = ctx.choice(["What is the {p} of the {t} with the {m} {C}?", "Which {t} has the {m} {C}? Give its {p}."])
    return (Select([f"T1.{p.name}"], join(child, fk, parent, child_first=False), 2, group_by=[f"T2.{fk.name}"],
                   order_by=[f"COUNT(*) {'DESC' if most else 'ASC'}"], limit=1),
            q.format(p=ctx.lex.c(p), t=ctx.lex.t(parent), C=ctx.lex.T(child), m="most" if most else "fewest"))


def h_join_group_count(ctx: Ctx):
    child, fk, parent = fk_pair(ctx)
    p = ctx.choice(proj(parent))
    cond, phrase = make_cond(ctx, parent, cond_col(ctx, parent, exclude=p), "T1")
    q = "For each {t} {w}, show its {p} and the number of {C}."
    return (Select([f"T1.{p.name}", "COUNT(*)"], join(child, fk, parent, child_first=False), 2, where=[cond],
                   group_by=[f"T2.{fk.name}"]),
            q.format(t=ctx.lex.t(parent), w=phrase, p=ctx.lex.c(p), C=ctx.lex.T(child)))


def x_join_above_avg(ctx: Ctx):
    child, fk, parent = fk_pair(ctx, child_labels=True)
    p = ctx.choice(proj(child)); n = ctx.choice(_need(numbers(parent)))
    q = "List the {p} of {C} whose {t} has a {c} above the average {c} of all {T}."
    return (Select([f"T1.{p.name}"], join(child, fk, parent), 2,
                   where=[Cond(f"T2.{n.name}", ">", Select([f"AVG({n.name})"], parent.name))]),
            q.format(p=ctx.lex.c(p), C=ctx.lex.T(child), t=ctx.lex.t(parent), c=ctx.lex.c(n), T=ctx.lex.T(parent)))


def x_setop_join(ctx: Ctx):
    child, fk, parent = fk_pair(ctx)
    p = ctx.choice(proj(parent)); col = ctx.choice(_need([c for c in child.columns if c.role == "category"]))
    a, b = make_cond(ctx, child, col, "T2"), make_cond(ctx, child, col, "T2")
    if a[0] == b[0]:
        raise Skip
    op = ctx.choice(["INTERSECT", "EXCEPT"])
    def side(k: Cond) -> Select:
        return Select([f"T1.{p.name}"], join(child, fk, parent, child_first=False), 2, where=[k])

    first = side(a[0])
    first.setop = (op, side(b[0]))
    q = {"INTERSECT": "List the {p} of {T} that have both a {c} {w1} and a {c} {w2}.",
         "EXCEPT": "List the {p} of {T} that have a {c} {w1} but no {c} {w2}."}[op]
    return (first,
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(parent), c=ctx.lex.t(child), w1=a[1], w2=b[1]))


def x_join_where_sup(ctx: Ctx):
    child, fk, parent = fk_pair(ctx, child_labels=True)
    p = ctx.choice(proj(child)); n = ctx.choice(_need(numbers(child)))
    cond, phrase = make_cond(ctx, parent, cond_col(ctx, parent), "T2", owner=parent)
    desc = ctx.rng.random() < 0.6
    q = "Among the {C} {w}, what is the {p} of {s}?"
    return (Select([f"T1.{p.name}"], join(child, fk, parent), 2, where=[cond],
                   order_by=[f"T1.{n.name} {'DESC' if desc else 'ASC'}"], limit=1),
            q.format(C=ctx.lex.T(child), w=phrase, p=ctx.lex.c(p), s=ctx.lex.sup("the one", n, desc)))


def x_not_in_where(ctx: Ctx):
    child, fk, parent = fk_pair(ctx)
    p = ctx.choice(proj(parent))
    cond, phrase = make_cond(ctx, parent, cond_col(ctx, parent, exclude=p))
    q = "List the {p} of {T} {w} that have no {c}."
    return (Select([p.name], parent.name,
                   where=[cond, Cond(parent.pk.name, "NOT IN", Select([fk.name], child.name))]),
            q.format(p=ctx.lex.c(p), T=ctx.lex.T(parent), w=phrase, c=ctx.lex.t(child)))


def x_where_group_top(ctx: Ctx):
    t = ctx.choice(ctx.tables("category")); c = ctx.choice(t.by_role("category"))
    cond, phrase = make_cond(ctx, t, cond_col(ctx, t, exclude=c))
    q = "Among the {T} {w}, which {c} is the most common?"
    return (Select([c.name], t.name, where=[cond], group_by=[c.name], order_by=["COUNT(*) DESC"], limit=1),
            q.format(T=ctx.lex.T(t), w=phrase, c=ctx.lex.c(c)))


# Weights steer the hardness mix (Spider dev: ~24 % easy, 43 % medium, 17 % hard, 16 % extra); ours is flatter
# so that every level has enough examples to score separately.
SHAPES: dict[str, tuple[Shape, float]] = {
    "e_proj": (e_proj, 1.0), "e_count": (e_count, 0.8), "e_agg": (e_agg, 1.0), "e_where": (e_where, 2.0),
    "e_count_where": (e_count_where, 1.2), "e_agg_where": (e_agg_where, 1.0), "e_distinct": (e_distinct, 0.6),
    "e_order": (e_order, 0.8), "e_between": (e_between, 0.6), "e_in": (e_in, 0.6), "e_group_having": (e_group_having, 0.6),
    "m_two_cols_where": (m_two_cols_where, 1.3), "m_sup": (m_sup, 1.6), "m_topk": (m_topk, 0.6),
    "m_group_count": (m_group_count, 1.0), "m_group_agg": (m_group_agg, 0.8), "m_like": (m_like, 0.8),
    "m_two_conds": (m_two_conds, 1.2), "m_minmax": (m_minmax, 0.6), "m_join_child": (m_join_child, 1.5),
    "m_join_parent": (m_join_parent, 1.0), "m_join_proj": (m_join_proj, 0.8), "m_count_join": (m_count_join, 0.8),
    "m_where_order": (m_where_order, 0.6),
    "h_above_avg": (h_above_avg, 1.2), "h_not_in": (h_not_in, 1.0), "h_in_sub": (h_in_sub, 0.8),
    "h_setop": (h_setop, 1.5), "h_group_top": (h_group_top, 1.0), "h_join_sup": (h_join_sup, 1.2),
    "h_where_sup": (h_where_sup, 1.2), "h_three_join": (h_three_join, 1.0),
    "x_join_group_top": (x_join_group_top, 1.5), "h_join_group_count": (h_join_group_count, 0.8),
    "x_join_above_avg": (x_join_above_avg, 1.0), "x_setop_join": (x_setop_join, 1.0),
    "x_join_where_sup": (x_join_where_sup, 1.2), "x_not_in_where": (x_not_in_where, 1.0),
    "x_where_group_top": (x_where_group_top, 1.0),
}


def draw_shape(rng: random.Random, levels: tuple[str, ...] = ("e", "m", "h", "x")) -> str:
    """A shape name, by weight, among the shapes whose prefix (e/m/h/x: their intended hardness) is in `levels`."""
    names = [n for n in SHAPES if n.split("_", 1)[0] in levels]
    return rng.choices(names, weights=[SHAPES[n][1] for n in names])[0]
