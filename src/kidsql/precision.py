"""What "auto" precision means, in one place: bf16 where the hardware computes it natively (a CUDA device with
bf16, or a CPU with AVX512-BF16), float32 elsewhere.

* Training (`--bf16 auto`): bf16 autocast on such hardware; on an AVX512-BF16 CPU one tiny:3m step is 1.17x
  faster (`benchmarks/bf16_step.py`).
* Weights (`--student_dtype auto`, `--teacher_dtype auto`): stored in bf16 on such a CUDA device (half the
  memory); on a CPU they stay float32 and autocast runs the matrix products in bf16.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kidsql.errors import KidsqlError

if TYPE_CHECKING:  # torch loads on first use: `kidsql.models` imports this module and keeps `kidsql --help` fast
    import torch


def native_bf16() -> str | None:
    """"cuda" or "cpu" where bf16 is native there (CUDA first), else None."""
    import torch

    if torch.cuda.is_available():
        return "cuda" if torch.cuda.is_bf16_supported() else None
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return "cpu" if native is not None and native() else None


def auto_bf16_autocast() -> bool:
    """`--bf16 auto`: autocast in bf16 wherever it is native."""
    return native_bf16() is not None


def resolve_dtype(dtype: Any = None) -> torch.dtype:
    """A weight dtype: None/"auto" -> bf16 on a CUDA device with native bf16, else float32 (module docstring)."""
    import torch

    if dtype is None or dtype == "auto":
        return torch.bfloat16 if native_bf16() == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise KidsqlError(f"dtype {dtype!r} unknown; use one of auto, {', '.join(names)}")
    return names[dtype]
