"""A run's output folder: the lock that keeps a second run out while one writes into it, and what a new run
does with a folder that already holds one (resume it, reuse it, or refuse and say how).

Why a lock: two runs writing into one folder (a rerun next to a run still going, two demos training the same
cached teacher) would interleave their checkpoints and results. The lock is `flock` on
`<folder>/.kidsql.lock`, so the kernel releases it when its holder dies, even by SIGKILL: no stale lock to clean
up by hand. The file stays (deleting it would let two runs lock two different files); it holds the holder's pid
for the message.

Why refuse: a run that silently started again from step 0 over a killed one would throw its checkpoints away,
and one that silently reused a folder would mix two runs. A folder with checkpoints and no `train_result.json` is an interrupted run (`--resume auto` continues it,
`--force` starts over), one with `train_result.json` a finished run (`--resume auto` reuses it, `--force`
trains again); anything else is refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kidsql.errors import KidsqlError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".kidsql.lock"
RESULT_NAME = "train_result.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@contextlib.contextmanager
def locked(folder: str | Path) -> Iterator[Path]:
    """Hold `folder`'s lock for the block (creating the folder); another holder is a one-line error naming it.

    Under `accelerate launch` only the global rank 0 locks: every rank writes into the same folder on purpose.
    """
    folder = Path(folder)
    if fcntl is None or int(os.environ.get("RANK", "0")) != 0:
        yield folder
        return
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise KidsqlError(f"{folder}: cannot create the run folder ({err.strerror}); choose a writable folder") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise KidsqlError(f"{folder}: another kidsql run (pid {holder}) is writing into this folder; wait for it "
                              "to finish (or stop it), or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield folder
    finally:
        os.close(fd)  # closing the descriptor releases the lock
        if created and [p.name for p in folder.iterdir()] == [LOCK_NAME]:  # a run that failed before writing
            (folder / LOCK_NAME).unlink(missing_ok=True)  # anything leaves no folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()


def checkpoints(folder: Path) -> list[Path]:
    """`checkpoint-N` sub-folders, by step."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


@dataclass(frozen=True)
class Plan:
    """What a training run does with its output folder: `finished` is the `train_result.json` to reuse (nothing
    to train), else `checkpoint` is where to resume from (None: from scratch)."""

    checkpoint: str | None = None
    finished: Path | None = None
    clear: bool = False  # `force`: delete the previous run (`clear_run`) once the new one is ready to train


def clear_run(folder: str | Path) -> None:
    """Delete what a run writes (checkpoints, `final/`, `train_result.json`); other files stay."""
    folder = Path(folder)
    if int(os.environ.get("RANK", "0")) == 0:
        for path in [*checkpoints(folder), folder / "final"]:
            shutil.rmtree(path, ignore_errors=True)
        (folder / RESULT_NAME).unlink(missing_ok=True)


def plan_run(folder: str | Path, *, resume: str | None, force: bool, max_steps: int) -> Plan:
    """Decide, before any compute, how a run into `folder` starts. With `force` the previous run is deleted,
    but only by the caller once its inputs have loaded: a typo in another option does not cost the old run."""
    folder = Path(folder)
    if force:
        return Plan(clear=True)
    result, ckpts = folder / RESULT_NAME, checkpoints(folder)
    last = ckpts[-1] if ckpts else None
    if resume == "auto":
        if result.is_file() and (max_steps <= 0 or _steps_done(folder) >= max_steps):
            return Plan(finished=result)
        if result.is_file() and last is None:
            raise KidsqlError(f"{folder}: holds a run finished before --max_steps {max_steps} and no checkpoint to "
                              "continue from; pass --force to train again from scratch, or choose another folder")
        return Plan(checkpoint=str(last) if last else None)
    if resume:
        if not (Path(resume) / "trainer_state.json").is_file():
            raise KidsqlError(f"--resume {resume}: not a checkpoint folder (no trainer_state.json); pass a "
                              f"checkpoint-N folder or --resume auto")
        return Plan(checkpoint=str(resume))
    if result.is_file():
        raise KidsqlError(f"{folder}: holds a finished run ({RESULT_NAME}); pass --force to train again from "
                          "scratch, --resume auto to reuse it, or choose another output folder")
    if last is not None or (folder / "final").exists():
        where = f"last checkpoint {last.name}" if last else "no checkpoint yet"
        raise KidsqlError(f"{folder}: holds an interrupted run ({where}); pass --resume auto to continue it or "
                          "--force to start over")
    return Plan()


def _steps_done(folder: Path) -> int:
    """Steps of the finished run (its train_result.json), for `--resume auto --max_steps N` beyond it."""
    import json

    try:
        return int(json.loads((folder / RESULT_NAME).read_text(encoding="utf-8")).get("steps") or 0)
    except (OSError, ValueError):
        return 0
