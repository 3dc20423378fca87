"""The rewrites the official test-suite evaluator makes to both queries before it executes them.

Papers and the Spider leaderboard report numbers made by taoyds/test-suite-sql-eval with its default flags, so
kidsql's default reproduces its steps, in its order (`evaluation.py` `evaluate()` then `exec_eval.py`):

1. the prediction has every ``value`` replaced by ``1`` (the official script does this for EX and EM alike, a
   left-over of value-free predictions; it also hits a column named ``value``);
2. both queries: ``> =``, ``< =``, ``! =`` are joined into ``>=``, ``<=``, ``!=``;
3. both queries: DISTINCT is removed unless ``keep_distinct``: the query is tokenised by sqlparse, only its
   *first statement* is kept (so ``SELECT 1; DROP ...`` runs as ``SELECT 1;``), and every token spelled
   ``distinct`` in any case is dropped (``count(DISTINCT x)`` becomes ``count( x)``);
4. row order counts iff the (rewritten) gold contains the text ``order by`` (lower-cased, one space);
5. at execution ``YEAR(CURDATE())`` becomes ``2020`` in both queries.

`plug_value_candidates` implements ``--plug_value``: the gold's literals are tried in every value slot of the
prediction (after the prediction as written), and a prediction is right if any candidate is.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

_CUR_YEAR = re.compile(r"YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", re.IGNORECASE)
_SPLITS = (";", "GO")  # where sqlparse may start a second statement
# Outside string literals, text without these lexes in sqlparse as runs of word characters, punctuation and
# spaces only (no comments, brackets, placeholders, statement separators, exponents).
# sqlparse's time-zone cast token (`AT TIME ZONE '...'`) ends a literal its own way, so `zone` is special too.
_LEXER_SPECIAL = re.compile(r"""[`´\[\]{}#$@:%\\;]|--|/\*|GO|\d[eE]-?\d|[zZ][oO][nN][eE]""")
_DISTINCT_WORD = re.compile(r"(?<!\w)distinct(?!\w)", re.IGNORECASE)
_QUOTE = re.compile(r"['\"]")
# sqlparse's own string-literal patterns and flags (keywords.SQL_REGEX; tests/test_official_rules.py checks
# they are still its patterns): a quote at a token start opens one literal, which is one token.
STRING_LITERALS = {"'": r"'(''|\\'|[^'])*'", '"': r'"(""|\\"|[^"])*"'}
_STRING_TOKEN = {q: re.compile(rx, re.IGNORECASE | re.UNICODE).match for q, rx in STRING_LITERALS.items()}


@dataclass(frozen=True)
class Prepared:
    """The gold and prediction as the official script executes them, and whether row order counts."""

    gold: str
    pred: str
    order_matters: bool


def join_spaced_operators(sql: str) -> str:
    """`> =` -> `>=` (and `<=`, `!=`): tokenisers of generated SQL sometimes split them."""
    return sql.replace("> =", ">=").replace("< =", "<=").replace("! =", "!=")


@functools.lru_cache(maxsize=4096)
def remove_distinct(sql: str) -> str:
    """The first statement with every `distinct` token dropped, exactly as the official `remove_distinct`.

    The official code parses with `sqlparse.parse` and flattens the tree; grouping never changes the leaf
    tokens, so sqlparse's lexer and statement splitter alone (no grouping, most of its cost) give the same
    tokens. sqlparse is only consulted when the text could change: without "distinct" and without a statement
    separator the round trip is the identity. Raises ValueError for a query with no statement (the official
    script crashes there).
    """
    if not sql.strip():
        raise ValueError("empty query")
    if "distinct" not in sql.lower() and not any(s in sql for s in _SPLITS):
        return sql
    by_words = _remove_distinct_words(sql)
    if by_words is not None:
        return by_words
    from sqlparse.engine import FilterStack

    first = next(iter(FilterStack().run(sql)), None)
    if first is None:
        raise ValueError("empty query")
    return "".join(t.value for t in first.flatten() if t.value.lower() != "distinct")


def _remove_distinct_words(sql: str) -> str | None:
    """`remove_distinct` without sqlparse, or None where only sqlparse can say.

    String literals are kept whole (matched by sqlparse's own patterns); between them, where no special
    character occurs, sqlparse's tokens are runs of word characters, punctuation and spaces, so a `distinct`
    token is exactly a whole word. A `;` is allowed only as the last character: the first statement is then
    the whole text. Checked against the official function on mutated spider-de queries and fuzz in
    tests/test_official_rules.py.
    """
    out: list[str] = []
    pos = 0
    while True:
        quote = _QUOTE.search(sql, pos)
        end = quote.start() if quote else len(sql)
        segment = sql[pos:end]
        last = quote is None and segment.endswith(";")
        if _LEXER_SPECIAL.search(segment[:-1] if last else segment):
            return None
        out.append(_DISTINCT_WORD.sub("", segment))
        if quote is None:
            return "".join(out)
        literal = _STRING_TOKEN[quote.group()](sql, end)
        if literal is None:  # unterminated: sqlparse lexes the rest otherwise
            return None
        out.append(literal.group())
        pos = literal.end()


def order_matters(gold_sql: str) -> bool:
    """The official rule: the gold text contains `order by` (so an ORDER BY in a sub-query counts too)."""
    return "order by" in gold_sql.lower()


def replace_cur_year(sql: str) -> str:
    """`YEAR(CURDATE())` -> `2020`, as the official executor does (a MySQL-ism some Spider queries hold)."""
    if "curdate" not in sql.lower():
        return sql
    return _CUR_YEAR.sub("2020", sql)


def prepare(gold: str, pred: str, *, keep_distinct: bool = False) -> Prepared:
    """Both queries rewritten as the official EX/TS path does; raises ValueError where it would crash."""
    pred = join_spaced_operators(pred.replace("value", "1"))
    gold = join_spaced_operators(gold)
    if not keep_distinct:
        pred, gold = remove_distinct(pred), remove_distinct(gold)
    return Prepared(replace_cur_year(gold), replace_cur_year(pred), order_matters(gold))


# ---------------------------------------------------------------- --plug-value

_SLOT = "VALUERARE"
_STRING = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_FLOAT = re.compile(r"[-+]?\d*\.\d+")
_INT = re.compile(r"(?<![\w.])[-+]?\d+(?![\w.])")


def _values_and_slots(sql: str) -> tuple[list[str], list[str]]:
    """(literals in order, tokens with every literal replaced by a slot): quoted strings, then numbers."""
    values: list[str] = []

    def slot(m: re.Match) -> str:
        values.append(m.group(0))
        return f" {_SLOT} "

    text = _STRING.sub(slot, sql.strip().rstrip(";"))
    text = _FLOAT.sub(slot, text)
    text = _INT.sub(slot, text)
    return values, text.split()


def plug_value_candidates(gold: str, pred: str, *, limit: int = 10_000) -> Iterator[str]:
    """The prediction, then the prediction with gold literals in its value slots, in every combination.

    The official `--plug_value` credits a prediction whose structure is right and whose values are wrong; it
    tries |gold values| ** |slots| fillings, so `limit` bounds them (past it the remaining fillings are not
    tried, which can only turn a right answer into a wrong one).
    """
    yield pred
    gold_values = sorted(set(_values_and_slots(gold)[0]))
    _, tokens = _values_and_slots(pred)
    slots = [i for i, t in enumerate(tokens) if t == _SLOT]
    if not gold_values or not slots:
        return
    for n, fill in enumerate(itertools.product(gold_values, repeat=len(slots))):
        if n >= limit:
            return
        out = list(tokens)
        for i, value in zip(slots, fill):
            out[i] = value
        yield " ".join(out)
