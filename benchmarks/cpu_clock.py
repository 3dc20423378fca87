"""`CpuClock`: CPU seconds of this process per optimiser step, the benchmarks' step time.

Unlike wall time it is barely moved by other jobs' load, so ratios taken on a shared machine stay meaningful.
"""

from __future__ import annotations

import time

from transformers import TrainerCallback


class CpuClock(TrainerCallback):
    """Records `time.process_time()` spent between each step's begin and end."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        self._t0 = time.process_time()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        self.times.append(time.process_time() - self._t0)
