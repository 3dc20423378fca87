"""Decide whether a predicted result set answers the question as the gold one does.

Two semantics, because the two benchmarks' official evaluators disagree and numbers are only comparable to
papers when computed their way:

* ``"spider"`` follows the test-suite evaluator (Zhong et al., 2020, ``exec_eval.py``, ``result_eq``): results are
  *bags* of rows (duplicates count: ``[1, 1, 2] != [1, 2, 2]``); row order matters only when the gold query has
  ``ORDER BY``; columns may come in any order. A column permutation is searched for: a predicted column can stand
  for a gold column only if the two hold the same multiset of values (a necessary condition, which prunes
  nearly every candidate), and at most ``max_permutations`` candidates are tried, so wide results cannot blow
  up; past the bound the answer is "no match" (conservative). Where the official code samples 20 random rows to
  prune, this uses the full column signatures: deterministic, and a filter no valid permutation fails. A match
  is then confirmed with the official quick rejection, whose per-row sort key is ``str(value) + str(type)``:
  it can reject two equal results whose rows mix ``1`` and ``1.0`` differently, and kidsql gives the
  official verdict there too.
* ``"bird"`` follows BIRD's ``evaluation.py``: ``set(pred) == set(gold)``; neither row order, duplicates nor
  column permutation are considered (so ``order_matters`` is ignored).

Value normalisation (both semantics): values are compared with Python equality, so ``1 == 1.0`` (and they hash
alike, so bags and sets agree), ``None`` equals ``None`` (SQL NULLs in results are values, not unknowns), text
``'1'`` differs from the number ``1``, and floats are compared exactly, without tolerance, as both official
evaluators do. Rows that mix types (NULL, numbers, text, blobs) are sorted with a type-ranked key, never by
comparing a str with an int, so they cannot crash.

Comparison is bounded: bags are compared by hashing (linear), and a ``deadline`` (``time.monotonic()`` value)
stops the permutation search with `CompareTimeout`, so two huge results cannot stall a worker.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence

SEMANTICS = ("spider", "bird")
DEFAULT_MAX_PERMUTATIONS = 1_000

_TYPE_RANK = {type(None): 0, bool: 1, int: 1, float: 1, str: 2, bytes: 3}


class CompareTimeout(Exception):
    """The comparison ran past its deadline; the caller judges the prediction wrong and says why."""


def _official_key(value: object) -> str:
    return str(value) + str(type(value))


def _official_quick_rej(gold: list[tuple], pred: list[tuple], order_matters: bool) -> bool:
    """The official `quick_rej`: True when the rows, each sorted by `str(v) + str(type(v))`, agree."""
    g = [tuple(sorted(r, key=_official_key)) for r in gold]
    p = [tuple(sorted(r, key=_official_key)) for r in pred]
    return g == p if order_matters else set(g) == set(p)


def _key(value: object) -> tuple:
    """Total order over SQLite values: by type class first, then by value inside the class."""
    rank = _TYPE_RANK.get(type(value), 4)
    if rank == 0:
        return (0, 0)
    if rank == 4:
        return (4, repr(value))
    if rank == 1 and value != value:  # NaN has no place in an order; put it first among numbers
        return (1, float("-inf"))
    return (rank, value)


def unorder_row(row: Sequence) -> tuple:
    """The row as a sorted tuple: equal for two rows that differ only by column order."""
    return tuple(sorted(row, key=_key))


def _permutations(candidates: list[list[int]], limit: int) -> Iterator[tuple[int, ...]]:
    """Injective assignments gold column i -> pred column perm[i], each taken from candidates[i]; at most `limit`."""
    n = len(candidates)
    chosen: list[int] = []
    used: set[int] = set()
    produced = 0

    def walk(i: int) -> Iterator[tuple[int, ...]]:
        nonlocal produced
        if produced >= limit:
            return
        if i == n:
            produced += 1
            yield tuple(chosen)
            return
        for j in candidates[i]:
            if j in used:
                continue
            used.add(j)
            chosen.append(j)
            yield from walk(i + 1)
            chosen.pop()
            used.discard(j)

    yield from walk(0)


def spider_eq(
    gold_rows: Sequence[Sequence],
    pred_rows: Sequence[Sequence],
    *,
    order_matters: bool,
    max_permutations: int = DEFAULT_MAX_PERMUTATIONS,
    deadline: float | None = None,
) -> bool:
    """The test-suite rule: same bag (or list, when ordered) of rows up to one column permutation."""
    if gold_rows is pred_rows:  # one result (a memoised query): the identity permutation, which the official finds
        return True
    if not gold_rows and not pred_rows:
        return True
    if len(gold_rows) != len(pred_rows):
        return False
    gold = [tuple(r) for r in gold_rows]
    pred = [tuple(r) for r in pred_rows]
    ncol = len(gold[0])
    if any(len(r) != ncol for r in pred) or any(len(r) != ncol for r in gold):
        return False
    if ncol == 1:  # one column: the official quick rejection and its only permutation compare the rows as they are
        return gold == pred if order_matters else Counter(gold) == Counter(pred)
    if gold == pred:  # the identity permutation matches, so the official verdict is its quick rejection's
        return _official_quick_rej(gold, pred, order_matters)
    # Quick rejection: whatever the column permutation, each row's bag of values is fixed.
    g_unordered = [unorder_row(r) for r in gold]
    p_unordered = [unorder_row(r) for r in pred]
    if order_matters:
        if g_unordered != p_unordered:
            return False
    elif Counter(g_unordered) != Counter(p_unordered):
        return False
    if not _official_quick_rej(gold, pred, order_matters):
        return False
    g_cols = [Counter(r[i] for r in gold) for i in range(ncol)]
    p_cols = [Counter(r[j] for r in pred) for j in range(ncol)]
    candidates = [[j for j in range(ncol) if p_cols[j] == g_cols[i]] for i in range(ncol)]
    if any(not c for c in candidates):
        return False
    gold_bag = None if order_matters else Counter(gold)
    for perm in _permutations(candidates, max_permutations):
        if deadline is not None and time.monotonic() > deadline:
            raise CompareTimeout(f"comparison of two {len(gold)}-row results ran out of time")
        permuted = [tuple(r[j] for j in perm) for r in pred]
        if order_matters:
            if permuted == gold:
                return True
        elif Counter(permuted) == gold_bag:
            return True
    return False


def bird_eq(gold_rows: Sequence[Sequence], pred_rows: Sequence[Sequence]) -> bool:
    """BIRD's rule: the two results are equal as sets of rows."""
    return {tuple(r) for r in gold_rows} == {tuple(r) for r in pred_rows}


def results_match(
    gold_rows: Sequence[Sequence],
    pred_rows: Sequence[Sequence],
    *,
    order_matters: bool,
    semantics: str = "spider",
    deadline: float | None = None,
) -> bool:
    """True when the prediction's result counts as the gold one under `semantics` ("spider" or "bird")."""
    if semantics == "spider":
        return spider_eq(gold_rows, pred_rows, order_matters=order_matters, deadline=deadline)
    if semantics == "bird":
        return bird_eq(gold_rows, pred_rows)
    raise ValueError(f"unknown semantics {semantics!r}; use one of {', '.join(SEMANTICS)}")
