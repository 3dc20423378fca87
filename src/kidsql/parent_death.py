"""A child process that dies with its parent, however the parent dies (SIGKILL included).

Why: `kidsql bench` trains each run in a spawned child. Without a guard, a bench killed with `kill -9` leaves
that child training and writing into the run folder while a rerun resumes the same run there. Two guards, because neither
alone is enough: Linux's `PR_SET_PDEATHSIG` has the kernel send SIGKILL to the child the moment its parent
exits; a watcher thread (every platform) notices that the parent pid is gone or the child was re-parented, and
exits. Both are installed first thing in the child; a parent that died before that is caught by the first check.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit as soon as `parent_pid` (its parent) is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher below still works
    if os.getppid() != parent_pid:  # the parent died before the guard was in place
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="kidsql-parent-watch", daemon=True).start()


def _watch(parent_pid: int) -> None:
    stop = threading.Event()
    while not stop.wait(WATCH_INTERVAL_S):
        if os.getppid() != parent_pid:
            os._exit(1)
