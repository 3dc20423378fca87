"""Worker processes for untrusted SQL: every task has a hard wall-clock bound, and workers die with their parent.

The sandbox bounds a query from inside the process (progress handler, watchdog interrupt). This pool adds the
bound that holds whatever SQLite or Python does: a worker whose task runs past its budget is killed (SIGKILL)
and replaced, and the task gets the caller's overrun verdict. A worker also ends itself when its parent dies,
even by `kill -9`: Linux's parent-death signal where available, and a thread that watches the parent's pid
everywhere. Each worker receives the shared `context` once, at start, and then only small tasks.
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


def _worker(conn: Connection, parent_pid: int, fn: Callable[[Any, Any], Any], context: Any) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which ends the workers
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        for index, task in batch:  # results go back one by one, so the parent times each task
            try:
                conn.send((index, True, fn(context, task)))
            except Exception as err:  # noqa: BLE001 - reported to the parent, which decides
                conn.send((index, False, f"{type(err).__name__}: {err}"))


class _Slot:
    def __init__(self, ctx: mp.context.BaseContext, fn: Callable, context: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, os.getpid(), fn, context), daemon=True)
        self.proc.start()
        child.close()
        self.queue: deque[int] = deque()  # indices sent, in the order the worker runs them
        self.deadline = float("inf")

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

    Tasks go to a worker in batches (one round trip per task would cost more than a Spider query), but each
    task is timed on its own: its clock starts when the previous one's result arrives. A task past its
    budget yields `on_overrun(task, budget)`, its worker is replaced and the rest of its batch is sent again;
    a task whose worker dies or raises yields `on_crash(task, reason)`. Workers are stopped on return, on
    error and on signals that reach the parent (SIGINT/SIGTERM raise here and run the `finally`).
    """
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pending: deque[int] = deque(range(len(tasks)))
    nworkers = max(1, min(workers, len(tasks)))
    slots = [_Slot(ctx, fn, context) for _ in range(nworkers)]
    previous_term = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        def assign(slot: _Slot) -> None:
            size = max(1, min(batch, len(pending) // (2 * nworkers)))
            sent = [pending.popleft() for _ in range(min(size, len(pending)))]
            if sent:
                slot.queue.extend(sent)
                slot.deadline = time.monotonic() + budget_s(tasks[slot.queue[0]])
                slot.conn.send([(i, tasks[i]) for i in sent])

        def replace(slot: _Slot) -> None:
            slots.remove(slot)
            slot.kill()
            pending.extendleft(reversed(slot.queue))  # the rest of its batch, first in line
            slot.queue.clear()
            fresh = _Slot(ctx, fn, context)
            slots.append(fresh)
            assign(fresh)

        for slot in slots:
            assign(slot)
        while any(s.queue for s in slots):
            busy = {s.conn: s for s in slots if s.queue}
            timeout = max(0.0, min(s.deadline for s in busy.values()) - time.monotonic())
            for conn in wait(list(busy), timeout=timeout):
                slot = busy[conn]
                try:
                    index, ok, value = conn.recv()
                except (EOFError, OSError):
                    index = slot.queue.popleft()
                    yield index, on_crash(tasks[index], f"worker died (exit code {slot.proc.exitcode})")
                    replace(slot)
                    continue
                slot.queue.popleft()
                yield index, value if ok else on_crash(tasks[index], value)
                if slot.queue:
                    slot.deadline = time.monotonic() + budget_s(tasks[slot.queue[0]])
                else:
                    assign(slot)
            now = time.monotonic()
            for slot in [s for s in slots if s.queue and s.deadline <= now]:
                index = slot.queue.popleft()
                yield index, on_overrun(tasks[index], budget_s(tasks[index]))
                replace(slot)
    finally:
        for slot in slots:
            slot.stop()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous_term)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
