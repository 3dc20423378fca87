"""The worker pool sends tasks and results in batches, yet bounds and blames each task on its own.

Each task list is one batch for one worker, so a task that hangs, raises or kills its worker does so while the
results of the tasks before it are still held by the worker: those must come back with their own values.
"""

from __future__ import annotations

import os
import threading
import time

from kidsql.sql.pool import run_bounded

MARGIN_S = 2.0  # shared machine


def _task(context: object, task: tuple[str, int]) -> object:
    kind, value = task
    if kind == "hang":
        time.sleep(3600)
    if kind == "sleep":
        time.sleep(value / 10)
    if kind == "raise":
        raise ValueError(f"bad {value}")
    if kind == "die":
        os._exit(3)
    if kind == "unpicklable":
        return threading.Lock()
    return value * 10


def _run(tasks: list[tuple[str, int]], budget: float = 1.0, workers: int = 1) -> dict[int, object]:
    return dict(run_bounded(_task, None, tasks, workers=workers, budget_s=lambda t: budget, batch=len(tasks),
                            on_overrun=lambda t, b: f"overrun {t[1]}", on_crash=lambda t, r: f"crash {t[1]}: {r}"))


def test_the_hanging_task_is_blamed_and_the_others_keep_their_results():
    tasks = [("ok", 1), ("ok", 2), ("hang", 3), ("ok", 4), ("hang", 5), ("ok", 6)]
    t0 = time.monotonic()
    out = _run(tasks)
    assert out == {0: 10, 1: 20, 2: "overrun 3", 3: 40, 4: "overrun 5", 5: 60}
    assert time.monotonic() - t0 < 2 * (1.0 + MARGIN_S)  # two bounds, each with a fresh worker


def test_each_task_has_its_own_budget_within_a_batch():
    """Four tasks of 0.6 s under a 1 s budget: the batch takes 2.4 s, no task overruns."""
    out = _run([("sleep", 6)] * 4)
    assert out == {i: 60 for i in range(4)}


def test_a_raising_a_dying_and_an_unpicklable_task_are_each_their_own_failure():
    out = _run([("ok", 1), ("raise", 2), ("ok", 3), ("die", 4), ("ok", 5), ("unpicklable", 6), ("ok", 7)])
    assert out[0] == 10 and out[2] == 30 and out[4] == 50 and out[6] == 70
    assert out[1] == "crash 2: ValueError: bad 2"
    assert out[3].startswith("crash 4: worker died (exit code 3)")
    assert out[5].startswith("crash 6: ") and "pickle" in out[5]


def test_many_small_tasks_over_two_workers_all_come_back_once():
    tasks = [("ok", i) for i in range(500)]
    out = list(run_bounded(_task, None, tasks, workers=2, budget_s=lambda t: 5.0,
                           on_overrun=lambda t, b: "overrun", on_crash=lambda t, r: r))
    assert sorted(i for i, _ in out) == list(range(500))
    assert all(value == 10 * i for i, value in out)
