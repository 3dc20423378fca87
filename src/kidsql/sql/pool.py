"""Worker processes for untrusted SQL: every task has a hard wall-clock bound, and workers die with their parent.

The sandbox bounds a query from inside the process (progress handler, watchdog interrupt). This pool adds the
bound that holds whatever SQLite or Python does: a worker whose task runs past its budget is killed (SIGKILL)
and replaced, and the task gets the caller's overrun verdict. A worker also ends itself when its parent dies,
even by `kill -9`: Linux's parent-death signal where available, and a thread that watches the parent's pid
everywhere. Each worker receives the shared `context` once, at start, and then only small tasks.

Tasks go out and results come back in batches (a message per task would cost more than a Spider query), yet
each task is timed on its own: the worker writes into memory shared with the parent when its current task
started and how many it has finished, so the parent knows which task is running, since when, and which
finished results were still waiting in the worker when it had to be killed (those are run again).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

_PR_SET_PDEATHSIG = 1
_PARENT_POLL_S = 0.2
_FLUSH_S = 0.05  # a worker sends what it has finished at least this often while a batch runs
_STARTED, _FINISHED = 0, 1  # the shared progress of one worker: when its current task started, tasks finished


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="kidsql-parent-watch", daemon=True).start()


def _worker(conn: Connection, parent_pid: int, fn: Callable[[Any, Any], Any], context: Any, progress: Any) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which ends the workers
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        done: list[tuple[int, bool, Any]] = []
        flushed = time.monotonic()
        for index, task in batch:
            progress[_STARTED] = time.monotonic()
            try:
                done.append((index, True, fn(context, task)))
            except Exception as err:  # noqa: BLE001 - reported to the parent, which decides
                done.append((index, False, f"{type(err).__name__}: {err}"))
            now = time.monotonic()
            progress[_STARTED] = now  # the next task's clock starts here, before it counts as finished
            progress[_FINISHED] += 1
            if now - flushed > _FLUSH_S:
                _send(conn, done)
                done, flushed = [], now
        if done:
            _send(conn, done)


def _send(conn: Connection, done: list[tuple[int, bool, Any]]) -> None:
    """Results to the parent; one that cannot be pickled goes back as that task's error, not as a dead worker."""
    try:
        conn.send(done)
    except Exception:  # noqa: BLE001 - pickling fails before anything is written
        for index, ok, value in done:
            try:
                conn.send([(index, ok, value)])
            except Exception as err:  # noqa: BLE001
                conn.send([(index, False, f"{type(err).__name__}: {err}")])


class _Slot:
    def __init__(self, ctx: mp.context.BaseContext, fn: Callable, context: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.progress = ctx.RawArray("d", 2)  # [_STARTED, _FINISHED], written by the worker only
        self.proc = ctx.Process(target=_worker, args=(child, os.getpid(), fn, context, self.progress), daemon=True)
        self.proc.start()
        child.close()
        self.queue: deque[int] = deque()  # indices sent and not yet answered, in the order the worker runs them
        self.answered = 0  # results received from this worker
        self.sent_at = 0.0  # when the batch in `queue` went out

    def unsent(self) -> int:
        """Tasks the worker has finished whose results have not arrived: the running task is `queue[unsent()]`."""
        return min(len(self.queue), int(self.progress[_FINISHED]) - self.answered)

    def running(self, budget_s: Callable[[int], float]) -> tuple[float, int | None]:
        """(deadline, index) of the task running now; its clock started when it did, or when its batch went out.
        (inf, None) when every task sent has finished (the results are on their way)."""
        position = self.unsent()
        if position >= len(self.queue):
            return float("inf"), None
        started = max(self.progress[_STARTED], self.sent_at)  # read after the count: never an earlier task's
        index = self.queue[position]
        return started + budget_s(index), index

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(1)
        self.kill()


def run_bounded(
    fn: Callable[[Any, Any], Any],
    context: Any,
    tasks: Sequence[Any],
    *,
    workers: int,
    budget_s: Callable[[Any], float],
    on_overrun: Callable[[Any, float], Any],
    on_crash: Callable[[Any, str], Any],
    batch: int = 16,
) -> Iterator[tuple[int, Any]]:
    """Yield `(index, fn(context, tasks[index]))` as tasks finish, each within `budget_s(task)` seconds.

    Tasks go to a worker in batches and come back in batches, but each task is timed on its own: its clock
    starts when it starts (or when its batch went out, if later). A task past its budget yields
    `on_overrun(task, budget)`; its worker is replaced and the rest of its batch, including results it had
    finished but not yet sent, runs again on the new one. A task whose worker dies yields `on_crash(task,
    reason)`, as does a task that raises. Workers are stopped on return, on error and on signals that reach
    the parent (SIGINT/SIGTERM raise here and run the `finally`).
    """
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pending: deque[int] = deque(range(len(tasks)))
    nworkers = max(1, min(workers, len(tasks)))
    slots = [_Slot(ctx, fn, context) for _ in range(nworkers)]
    previous_term = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)

    def budget_of(index: int) -> float:
        return budget_s(tasks[index])

    try:
        def assign(slot: _Slot) -> None:
            size = max(1, min(batch, len(pending) // (2 * nworkers)))
            sent = [pending.popleft() for _ in range(min(size, len(pending)))]
            if sent:
                slot.queue.extend(sent)
                slot.sent_at = time.monotonic()
                slot.conn.send([(i, tasks[i]) for i in sent])

        def take(slot: _Slot, results: list[tuple[int, bool, Any]]) -> Iterator[tuple[int, Any]]:
            for index, ok, value in results:
                slot.queue.popleft()
                slot.answered += 1
                yield index, value if ok else on_crash(tasks[index], value)

        def replace(slot: _Slot, culprit: int, verdict: Any) -> Iterator[tuple[int, Any]]:
            """Kill the worker; `culprit` gets `verdict`, every other task it held runs again on a new one."""
            slots.remove(slot)
            slot.kill()
            slot.queue.remove(culprit)
            pending.extendleft(reversed(slot.queue))  # first in line
            slot.queue.clear()
            fresh = _Slot(ctx, fn, context)
            slots.append(fresh)
            assign(fresh)
            yield culprit, verdict

        for slot in slots:
            assign(slot)
        while any(s.queue for s in slots):
            busy = {s.conn: s for s in slots if s.queue}
            first = min(s.running(budget_of)[0] for s in busy.values())
            timeout = None if first == float("inf") else max(0.0, first - time.monotonic())
            for conn in wait(list(busy), timeout=timeout):
                slot = busy[conn]
                try:
                    results = conn.recv()
                except (EOFError, OSError):  # died: the task it was running (or its last) is the culprit
                    culprit = slot.queue[min(slot.unsent(), len(slot.queue) - 1)]
                    slot.proc.join(1)  # the pipe closes before the process is reaped: wait for its exit code
                    reason = f"worker died (exit code {slot.proc.exitcode})"
                    yield from replace(slot, culprit, on_crash(tasks[culprit], reason))
                    continue
                yield from take(slot, results)
                if not slot.queue:
                    assign(slot)
            for slot in [s for s in slots if s.queue]:
                deadline, culprit = slot.running(budget_of)  # one reading: the task that overran is this one
                if culprit is not None and deadline <= time.monotonic():
                    yield from replace(slot, culprit, on_overrun(tasks[culprit], budget_of(culprit)))
    finally:
        for slot in slots:
            slot.stop()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous_term)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
