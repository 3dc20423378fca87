"""A worker's memory of query results, so that a query it has run once on a database is not run again.

An evaluation asks the same query many times: every prediction of one example is compared with the same gold,
a prediction identical to its gold (or equal to it once the official rewrites drop DISTINCT) runs the gold's
text, and models repeat themselves across examples. The databases are opened read-only and nothing a query does
survives to the next (`kidsql.sql.sandbox`), so a deterministic query gives the same result every time it runs
on the same file: its remembered result is the result a new run would give.

What is never remembered, so that a recalled result is always exactly a new run's:

* queries whose text names a function whose value can change between runs (``random()``, ``date('now')``,
  ``date()``, ``current_timestamp``, ``changes()``, ...): any text holding one of `NONDETERMINISTIC`'s names as
  a whole word, called or not (a column called ``date`` is simply run each time);
* failures that depend on the moment (timeouts, memory, a file that cannot be opened) and byte-cap failures
  (which of the byte and row caps a capped run reports depends on its row cap).

Row caps: a full result of n rows answers every later run with a row cap c (n > c gives the run's own "row cap
c exceeded"); a run stopped at row cap c0 answers later runs with caps up to c0 and is run again for a larger
cap. Memory is bounded by `max_bytes` of result data (the sandbox's estimate) and `max_entries`; the oldest
results are dropped first.
"""

from __future__ import annotations

import re
from collections.abc import Hashable

from kidsql.sql.sandbox import DEFAULT_MAX_BYTES, ExecResult

# SQLite's functions whose value can change between two runs of one query (the date and time functions read
# the clock when given 'now' or no argument), matched as whole words wherever they occur.
NONDETERMINISTIC = re.compile(
    r"(?<!\w)(random|randomblob|date|time|datetime|julianday|unixepoch|strftime|timediff|current_date|current_time"
    r"|current_timestamp|changes|total_changes|last_insert_rowid)(?!\w)", re.IGNORECASE)
_ROW_CAP = re.compile(r"row cap (\d+) exceeded")
_MOMENTARY = ("timeout", "memory", "byte cap", "cannot open", "database not found")


_STEMS = ("random", "date", "time", "julian", "epoch", "changes", "last_insert")  # in every name above


def deterministic(sql: str) -> bool:
    """False when the text may call a function whose value changes between runs (a generous match)."""
    lower = sql.lower()
    if not any(stem in lower for stem in _STEMS):  # substring tests first: most queries hold none of them
        return True
    return NONDETERMINISTIC.search(sql) is None


class ResultMemo:
    """Results keyed by (database, exact query text, ...): `recall` before running, `remember` after."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = 4096) -> None:
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._results: dict[Hashable, ExecResult] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._results)

    def clear(self) -> None:
        self._results.clear()
        self._bytes = 0

    def recall(self, key: Hashable, row_cap: int) -> ExecResult | None:
        """The result a run under `row_cap` would give, or None when it must run."""
        res = self._results.get(key)
        if res is None:
            return None
        if res.ok:
            if len(res.rows) > row_cap:  # type: ignore[arg-type]
                return ExecResult(False, None, [], f"row cap {row_cap} exceeded")
            return res
        capped = _ROW_CAP.fullmatch(res.error or "")
        if capped is None:
            return res  # an error of the query itself: the same on every run
        if row_cap <= int(capped.group(1)):
            return ExecResult(False, None, [], f"row cap {row_cap} exceeded")
        return None  # stopped early before; this run may read further

    def remember(self, key: Hashable, sql: str, res: ExecResult) -> None:
        if not res.ok and (res.error or "").startswith(_MOMENTARY):
            return
        if res.nbytes > self.max_bytes // 4 or not deterministic(sql):
            return
        old = self._results.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._results[key] = res
        self._bytes += res.nbytes
        while self._results and (self._bytes > self.max_bytes or len(self._results) > self.max_entries):
            self._bytes -= self._results.pop(next(iter(self._results))).nbytes
