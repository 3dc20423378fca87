"""Run one untrusted SQL query on a SQLite file without letting it write, escape, hang or exhaust memory.

Predicted SQL comes from a language model and gold SQL from files we did not write, so both are treated as
hostile. The defences are layered, so that a gap in one is caught by another:

1. The file is opened read-only through a URI (`mode=ro`). When the file is a plain rollback-journal database with
   no journal/WAL file beside it, `immutable=1` is added as well: SQLite then takes no locks and never creates a
   `-shm`/`-wal`/`-journal` file. `immutable=1` is *not* used for WAL databases or when a journal exists, because
   SQLite would then silently ignore committed-but-not-checkpointed data and return wrong results.
2. `PRAGMA query_only=1` and an authorizer that allows only reading (SELECT, READ, RECURSIVE, functions) and a
   few schema-introspection pragmas; every write, DDL, ATTACH/DETACH (which is also how `VACUUM INTO` writes a
   new file, even on a read-only connection), transaction control and `load_extension` is denied, and the
   denied action is reported as the reason.
3. Limits: `SQLITE_LIMIT_ATTACHED=0`, `SQLITE_LIMIT_LENGTH` (stops zeroblob/randomblob/printf/replace blow-ups),
   `SQLITE_LIMIT_SQL_LENGTH`, `printf`/`format` replaced by a checked wrapper (SQLite's own `%.*c` repeat loop
   ignores the length limit and runs for seconds inside one call, where no interrupt can reach it), no sorter
   worker threads, temp data kept in memory under a process-wide
   `hard_heap_limit`.
4. A time bound enforced twice inside the process: `set_progress_handler` stops the VDBE loop, and a watchdog
   thread calls `Connection.interrupt()` at the deadline, which also reaches work the progress handler never
   sees (long sorts, window partitions). The evaluator adds a third, outside the process: a worker that
   overruns its bound is killed and replaced (`kidsql.sql.pool`).
5. Caps on rows and bytes read back, checked as rows arrive: rows are fetched one at a time until their size
   is known, then in batches small enough that one batch cannot pass the byte cap by more than one row.
6. `Cursor.execute` refuses several statements (`SELECT 1; DROP TABLE t`); `executescript` is never used.

A `Database` keeps one such connection open for many queries (opening one costs more than most Spider
queries). Nothing a query does survives to the next: the connection is read-only and `query_only`, the
authorizer denies every temp object, setting and attachment, each statement is finalised after it runs, and the
guard's state is reset per query.

Nothing here raises for bad SQL: every failure is an `ExecResult` with `ok=False` and a one-line reason.
Text that is not UTF-8 is decoded as the official evaluator decodes it (invalid bytes dropped).
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_VALUE_BYTES = 8 * 1024 * 1024
DEFAULT_HEAP_LIMIT_BYTES = 1024 * 1024 * 1024
MAX_SQL_CHARS = 1_000_000
_FETCH_CHUNK = 512
# The progress handler is the first bound (checked between VDBE instructions, every this many); the
# watchdog's interrupt is the second, for work inside one instruction. A small period costs a Python call
# per few hundred instructions, which slows heavy queries for nothing now that the watchdog exists.
_PROGRESS_OPS = 10_000
_WATCHDOG_POLL_S = 0.02

# Pragmas a query may use: they only read the schema. Anything else (including reads of settings) is denied,
# because no text-to-SQL answer needs them and some forms write.
READ_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"})
# Functions that touch the file system or process memory in some SQLite builds.
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})

_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name.lower()
    for name in (
        "CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE CREATE_TEMP_TRIGGER CREATE_TEMP_VIEW "
        "CREATE_TRIGGER CREATE_VIEW DELETE DROP_INDEX DROP_TABLE DROP_TEMP_INDEX DROP_TEMP_TABLE "
        "DROP_TEMP_TRIGGER DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW INSERT PRAGMA READ SELECT TRANSACTION UPDATE "
        "ATTACH DETACH ALTER_TABLE REINDEX ANALYZE CREATE_VTABLE DROP_VTABLE FUNCTION SAVEPOINT RECURSIVE"
    ).split()
    if hasattr(sqlite3, f"SQLITE_{name}")
}
_WRITES = {sqlite3.SQLITE_INSERT: "insert", sqlite3.SQLITE_UPDATE: "update", sqlite3.SQLITE_DELETE: "delete"}


@dataclass
class ExecResult:
    """Outcome of one query. `rows` is None exactly when `ok` is False; `error` then says why, on one line.
    `nbytes` is the size of `rows` as the byte cap counts it (8 per value plus the length of text and blobs)."""

    ok: bool
    rows: list[tuple] | None
    columns: list[str] = field(default_factory=list)
    error: str | None = None
    elapsed_s: float = 0.0
    nbytes: int = 0


class _Guard:
    """Authorizer + progress handler for one connection; remembers why it stopped the query, for the reason."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.deadline = float("inf")
        self.sql = ""
        self.reset()

    def reset(self) -> None:
        self.timed_out = False
        self.denied: str | None = None
        self.udf_error: str | None = None

    def start(self, sql: str = "") -> None:
        self.reset()
        self.sql = sql
        self.deadline = time.monotonic() + self.timeout_s

    def progress(self) -> int:
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return 1  # non-zero interrupts the running statement
        return 0

    def authorize(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in DENIED_FUNCTIONS:
                return self._deny(f"function {arg2}")
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in READ_PRAGMAS:
            return sqlite3.SQLITE_OK
        if action in _WRITES:
            pragma_fn = _PRAGMA_FUNCTION.search(self.sql) if arg1 == "sqlite_master" else None
            if pragma_fn:  # SQLite authorises a pragma table-valued function as an update of sqlite_master
                name = pragma_fn.group(1)
                return self._deny(f"pragma function pragma_{name} (SQLite asks to update sqlite_master for it; "
                                  f"use PRAGMA {name}(...) instead)")
            return self._deny(f"write to table {arg1} ({_WRITES[action]})")
        if action == sqlite3.SQLITE_ATTACH:
            if _VACUUM.match(self.sql):
                if arg1:  # VACUUM INTO 'file' attaches the new file to write it
                    return self._deny(f"VACUUM INTO {arg1!r} (it writes a copy of the database)")
                return self._deny("VACUUM (it rewrites the database file)")
            return self._deny(f"attach of {arg1!r}")
        if action == sqlite3.SQLITE_PRAGMA:
            return self._deny(f"pragma {arg1}" + (f"={arg2}" if arg2 is not None else ""))
        name = _ACTION_NAMES.get(action, f"action {action}")
        target = arg1 or arg2
        return self._deny(name.replace("_", " ") + (f" {target}" if target else ""))

    def _deny(self, what: str) -> int:
        if self.denied is None:  # keep the first: later denials are consequences of it
            self.denied = f"denied: {what}"
        return sqlite3.SQLITE_DENY


_NOT_UTF8 = "Could not decode to UTF-8"
_PRAGMA_FUNCTION = re.compile(r"\bpragma_(\w+)\s*\(", re.IGNORECASE)
_VACUUM = re.compile(r"\s*vacuum\b", re.IGNORECASE)


class _Watchdog:
    """One thread per process that interrupts the connection whose deadline has passed.

    `set_progress_handler` runs only between VDBE instructions; a sort or a window partition can run for
    many seconds inside one. `Connection.interrupt()` is safe from another thread and stops those too. The
    thread polls every `_WATCHDOG_POLL_S` instead of being woken per query: waking a thread per query costs
    a GIL hand-off each time, more than a Spider query takes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: tuple[sqlite3.Connection, _Guard, float] | None = None
        self._thread: threading.Thread | None = None

    def arm(self, conn: sqlite3.Connection, guard: _Guard, deadline: float) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="kidsql-sql-watchdog", daemon=True)
            self._thread.start()
        with self._lock:
            self._armed = (conn, guard, deadline)

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def _loop(self) -> None:
        while True:
            time.sleep(_WATCHDOG_POLL_S)
            with self._lock:  # the query it interrupts is the one still armed, never the next one
                armed = self._armed
                if armed is None or time.monotonic() < armed[2]:
                    continue
                conn, guard, _ = armed
                guard.timed_out = True
                try:
                    conn.interrupt()
                except sqlite3.Error:  # closed meanwhile: nothing runs on it
                    pass
                self._armed = None


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):  # a forked worker gets a fresh watchdog: the parent's lock may be held
    os.register_at_fork(after_in_child=_WATCHDOG.__init__)


def _decode(raw: bytes) -> str:
    """Invalid UTF-8 bytes are dropped, as the official evaluator's `text_factory` does, never raised."""
    return raw.decode("utf-8", errors="ignore")


def _immutable_safe(db_path: Path) -> bool:
    """True when the file alone is the whole database: rollback-journal format and no journal/WAL beside it."""
    try:
        with db_path.open("rb") as fh:
            header = fh.read(20)
    except OSError:
        return False
    if len(header) < 20 or not header.startswith(b"SQLite format 3\x00"):
        return False
    if header[18] != 1 or header[19] != 1:  # 2 = WAL
        return False
    return not any(db_path.with_name(db_path.name + suffix).exists() for suffix in ("-journal", "-wal"))


_heap_limit_set: int | None = None


def _set_heap_limit(conn: sqlite3.Connection, limit: int) -> None:
    """`hard_heap_limit` is process-wide and can only be lowered, so set it once per process (per limit)."""
    global _heap_limit_set
    if _heap_limit_set is None or limit < _heap_limit_set:
        conn.execute(f"PRAGMA hard_heap_limit={int(limit)}")
        _heap_limit_set = limit


def connect(
    db_path: Path,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    heap_limit_bytes: int = DEFAULT_HEAP_LIMIT_BYTES,
) -> tuple[sqlite3.Connection, _Guard]:
    """Open a locked-down read-only connection. Raises sqlite3.Error / OSError; `execute` turns them into reasons."""
    db_path = Path(os.path.abspath(db_path))  # absolute for the URI; no symlink walk (resolve) on the hot path
    uri = f"file:{quote(str(db_path))}?mode=ro" + ("&immutable=1" if _immutable_safe(db_path) else "")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.text_factory = str  # C speed; `Database.run` switches to `_decode` when a value is not UTF-8
        if hasattr(conn, "enable_load_extension"):  # absent when Python was built without extension support
            conn.enable_load_extension(False)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_value_bytes)
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_CHARS)
        conn.setlimit(sqlite3.SQLITE_LIMIT_WORKER_THREADS, 0)
        # Our own settings go in before the authorizer, which would deny them.
        conn.execute("PRAGMA query_only=1")
        conn.execute("PRAGMA trusted_schema=0")
        conn.execute("PRAGMA temp_store=MEMORY")  # big sorts hit the heap limit instead of filling /tmp
        _set_heap_limit(conn, heap_limit_bytes)
        guard = _Guard(timeout_s)
        for name in ("printf", "format"):
            conn.create_function(name, -1, _checked_printf(max_value_bytes, guard), deterministic=True)
        conn.set_authorizer(guard.authorize)
        conn.set_progress_handler(guard.progress, _PROGRESS_OPS)
    except BaseException:
        conn.close()
        raise
    return conn, guard


_SPEC = re.compile(r"%[-+ 0#,!]*(\*|\d+)?(?:\.(\*|\d+))?(?:ll|l)?(.)", re.S)
_printf_local = threading.local()


def _as_int(value: object) -> int:
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0


def _checked_printf(limit: int, guard: _Guard):
    """A `printf` that refuses widths/precisions over `limit`, then lets SQLite's own printf do the formatting."""

    def printf(fmt: object = None, *args: object) -> object:
        try:
            return _printf(fmt, args)
        except (sqlite3.Error, ValueError) as err:
            guard.udf_error = guard.udf_error or f"printf: {err}"
            raise

    def _printf(fmt: object, args: tuple) -> object:
        if isinstance(fmt, str):
            rest = list(args)
            for m in _SPEC.finditer(fmt):
                width, precision, conv = m.groups()
                if conv == "%":
                    continue
                for part in (width, precision):
                    n = _as_int(rest.pop(0) if rest else 0) if part == "*" else int(part or 0)
                    if abs(n) > limit:
                        raise ValueError(f"width/precision {n} over the {limit} cap")
                if rest:
                    rest.pop(0)
        helper = getattr(_printf_local, "conn", None)
        if helper is None:  # a private connection where `printf` is still SQLite's built-in
            helper = _printf_local.conn = sqlite3.connect(":memory:")
            helper.text_factory = _decode
        helper.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limit)
        marks = ", ".join("?" * (1 + len(args)))
        return helper.execute(f"SELECT printf({marks})", (fmt, *args)).fetchone()[0]

    return printf


def _reason(err: BaseException, guard: _Guard) -> str:
    if guard.timed_out:
        return f"timeout after {guard.timeout_s:g} s"
    if guard.denied:
        return guard.denied
    if isinstance(err, MemoryError):
        return "memory cap exceeded (out of memory)"
    msg = " ".join(str(err).split()) or type(err).__name__
    if "user-defined function raised exception" in msg and guard.udf_error:
        return guard.udf_error
    if "one statement at a time" in msg:
        return "multiple statements are not allowed"
    return f"{type(err).__name__}: {msg}"


def check_limits(timeout_s: float, max_rows: int = DEFAULT_MAX_ROWS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Raise ValueError unless every bound is a finite positive number (nan/inf/0 would disable a bound)."""
    if not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s) or timeout_s <= 0:
        raise ValueError(f"timeout must be a finite number of seconds > 0, not {timeout_s!r}")
    for name, value in (("max_rows", max_rows), ("max_bytes", max_bytes)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")


class Database:
    """One locked-down connection to one file, reused for many queries; see the module docstring."""

    def __init__(
        self,
        db_path: Path,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        heap_limit_bytes: int = DEFAULT_HEAP_LIMIT_BYTES,
    ) -> None:
        check_limits(timeout_s, max_rows, max_bytes)
        self.path = Path(db_path)
        self.timeout_s, self.max_rows, self.max_bytes = timeout_s, max_rows, max_bytes
        self.max_value_bytes, self.heap_limit_bytes = max_value_bytes, heap_limit_bytes
        self._conn: sqlite3.Connection | None = None
        self._guard: _Guard | None = None

    def _open(self) -> str | None:
        """None once the connection is open, else why it cannot be (tried again on the next query)."""
        if self._conn is None:
            if not self.path.is_file():
                return f"database not found: {self.path}"
            try:
                self._conn, self._guard = connect(self.path, self.timeout_s, max_value_bytes=self.max_value_bytes,
                                                  heap_limit_bytes=self.heap_limit_bytes)
            except (sqlite3.Error, OSError) as err:
                return f"cannot open database {self.path}: {err}"
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run(self, sql: str, *, max_rows: int | None = None) -> ExecResult:
        """Run one query under every guard; a cap hit is a failure (a truncated result would compare wrongly).

        `max_rows` lowers the row cap for this query (the evaluator stops a prediction as soon as it has more
        rows than the gold, which can no longer match under bag semantics).
        """
        start = time.perf_counter()
        row_cap = self.max_rows if max_rows is None else min(max_rows, self.max_rows)

        def fail(reason: str) -> ExecResult:
            return ExecResult(False, None, [], reason, time.perf_counter() - start)

        if not isinstance(sql, str) or not sql.strip():
            return fail("empty query")
        if len(sql) > MAX_SQL_CHARS:
            return fail(f"query longer than {MAX_SQL_CHARS} characters")
        error = self._open()
        if error:
            return fail(error)
        conn, guard = self._conn, self._guard
        assert conn is not None and guard is not None
        guard.start(sql)
        _WATCHDOG.arm(conn, guard, guard.deadline)
        cur = conn.cursor()
        try:
            cur.execute(sql)
            if cur.description is None:  # REINDEX and friends: no result set, so no answer to compare
                return fail("not a query: the statement returns no result set")
            columns = [d[0] for d in cur.description]
            rows: list[tuple] = []
            size = 0
            largest = 0  # biggest row seen, to size the next batch
            batch = 1
            while True:
                chunk = cur.fetchmany(batch)
                if not chunk:
                    break
                for row in chunk:
                    row_size = 8 * len(row)
                    for v in row:
                        if isinstance(v, (str, bytes)):
                            row_size += len(v)
                    size += row_size
                    if row_size > largest:
                        largest = row_size
                rows.extend(chunk)
                if len(rows) > row_cap:
                    return fail(f"row cap {row_cap} exceeded")
                if size > self.max_bytes:
                    return fail(f"byte cap {self.max_bytes} exceeded")
                # Next batch: at most what fits under the byte cap if each row were as big as the biggest yet.
                batch = max(1, min(_FETCH_CHUNK, (self.max_bytes - size) // (2 * largest + 1)))
            return ExecResult(True, rows, columns, None, time.perf_counter() - start, size)
        except (sqlite3.Error, MemoryError, ValueError, OverflowError) as err:
            if _NOT_UTF8 in str(err) and conn.text_factory is not _decode:
                cur.close()
                _WATCHDOG.disarm()
                conn.text_factory = _decode  # rare: this database holds invalid UTF-8; decode it in Python
                return self.run(sql, max_rows=max_rows)
            return fail(_reason(err, guard))
        finally:
            _WATCHDOG.disarm()
            cur.close()  # finalises the statement: nothing of it outlives the query
            if conn.in_transaction:  # never true for reads; a guard against state leaking to the next query
                self.close()


def execute(
    db_path: Path,
    sql: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    heap_limit_bytes: int = DEFAULT_HEAP_LIMIT_BYTES,
) -> ExecResult:
    """One query on a connection of its own, opened and closed here (`Database` reuses one for many)."""
    db = Database(db_path, timeout_s=timeout_s, max_rows=max_rows, max_bytes=max_bytes,
                  max_value_bytes=max_value_bytes, heap_limit_bytes=heap_limit_bytes)
    try:
        return db.run(sql)
    finally:
        db.close()
