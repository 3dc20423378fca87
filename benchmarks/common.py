"""What the training benchmarks share: `CpuClock` (CPU seconds per optimiser step: unlike wall time barely moved
by other jobs' load, so ratios taken on a shared machine stay meaningful) and `tiny_bench_pair` (the embedded
`small` benchmark and a saved random teacher in a fresh temp folder)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class CpuClock(TrainerCallback):
    """Records `time.process_time()` spent between each step's begin and end."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        self._t0 = time.process_time()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        self.times.append(time.process_time() - self._t0)


def tiny_bench_pair(teacher_spec: str, prefix: str) -> tuple[Path, Path, Path, Any]:
    """(work folder, benchmark, teacher folder, tokenizer): the `small` embedded benchmark and a random
    `teacher_spec` model saved with its tokenizer, in a new temp folder named after `prefix`."""
    from kidsql.data.synth import generate_benchmark
    from kidsql.models import load_model, load_tokenizer

    work = Path(tempfile.mkdtemp(prefix=prefix))
    bench = generate_benchmark(work / "bench", seed=0, size="small")
    tok = load_tokenizer(str(bench / "tokenizer"))
    teacher_dir = work / "teacher"
    load_model(teacher_spec, tok, seed=1).save_pretrained(teacher_dir)
    tok.save_pretrained(teacher_dir)
    return work, bench, teacher_dir, tok
