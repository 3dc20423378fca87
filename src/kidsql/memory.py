"""Peak memory of one training run, for reports: CUDA's allocator stats, or the process's RSS high-water mark.

A process that trains several models (a bench) needs each run's own peak, so the high-water mark is reset
before a run: CUDA's peak stats, or Linux's VmHWM through `/proc/self/clear_refs`. Where neither exists, the
process-lifetime peak RSS (`ru_maxrss`) is reported and named as such.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def reset_peak_memory() -> bool:
    """Clear the peak-memory counter (CUDA stats, or Linux's VmHWM via clear_refs); False if not possible."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return True
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
        return True
    except OSError:
        return False


def peak_memory() -> tuple[float | None, str]:
    """(MiB, what was measured): peak since the last `reset_peak_memory` where it can be reset."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda max_memory_allocated"
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024, "peak RSS of this run (high-water mark reset before)"
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10), "process peak RSS (since start)"
