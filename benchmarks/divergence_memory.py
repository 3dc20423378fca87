"""Peak memory and time of the RKL loss (forward + backward): naive full-tensor vs chunked implementations.

Why subprocesses: torch's CPU allocator is invisible to `tracemalloc`, so each variant runs in a fresh Python
process that reports its own peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) minus the RSS it had once
the inputs (student logits with requires_grad, teacher logits) existed. What remains is what the loss itself
costs: its temporaries, its saved tensors, and the [B, T, V] gradient (the same in every variant). glibc's
default allocator is kept on purpose: pinning MALLOC_MMAP_THRESHOLD_ low makes RSS follow live memory slightly
more closely (-7% for ours) but gives every chunk temporary fresh zero-filled pages, which triples ours' time.

Variants:
  naive            full log_softmax of both, q * (log q - log p) over [B, T, V], masked mean (what most code does)
  chunked-autograd ours per chunk, but plain autograd: every chunk's float32 graph lives until the backward
  ours             kidsql.distill.divergences.divergence("rkl", ...): chunked custom autograd.Function

Usage: python benchmarks/divergence_memory.py [--vocab 150000 --seq 1024 --batch 1 --dtypes float32 bfloat16]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("naive", "chunked-autograd", "ours")


def _naive_rkl(student, teacher, mask):
    import torch.nn.functional as F

    log_q = F.log_softmax(student.float(), dim=-1)
    log_p = F.log_softmax(teacher.detach().float(), dim=-1)
    per_position = (log_q.exp() * (log_q - log_p)).sum(-1)
    return per_position[mask].mean()


def _chunked_autograd_rkl(student, teacher, mask, chunk_size):
    from kidsql.distill.divergences import _row_divergence

    row = _row_divergence("rkl", temperature=1.0, beta=0.5, alpha=0.1)
    index = mask.nonzero(as_tuple=True)
    n = index[0].numel()
    total = 0.0
    for start in range(0, n, chunk_size):
        idx = tuple(i[start : start + chunk_size] for i in index)
        total = total + row(student[idx].float(), teacher.detach()[idx].float()).sum()
    return total / n


def _child(
    variant: str, dtype_name: str, batch: int, seq: int, vocab: int, chunk_size: int | None, threads: int, repeats: int
) -> dict:
    """Runs in a fresh process: build inputs, time forward+backward (best of `repeats`), report peak RSS growth."""
    import torch

    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(0)
    # In-place fills: no float32 temporary inflates the baseline peak for bf16.
    student = torch.empty(batch, seq, vocab, dtype=dtype).normal_(0, 2, generator=generator).requires_grad_(True)
    teacher = torch.empty(batch, seq, vocab, dtype=dtype).normal_(0, 2, generator=generator)
    mask = torch.ones(batch, seq, dtype=torch.bool)
    # Warm up kernels on a small slice so lazy initialisation is not billed to the loss.
    from kidsql.distill.divergences import auto_chunk_size, divergence

    chunk = chunk_size or auto_chunk_size(vocab)

    small = student.detach()[:, :2].clone().requires_grad_(True)
    divergence("rkl", small, teacher[:, :2], mask[:, :2]).backward()
    _naive_rkl(small, teacher[:, :2], mask[:, :2]).backward()
    del small

    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        student.grad = None
        start = time.perf_counter()
        if variant == "naive":
            loss = _naive_rkl(student, teacher, mask)
        elif variant == "chunked-autograd":
            loss = _chunked_autograd_rkl(student, teacher, mask, chunk)
        else:
            loss = divergence("rkl", student, teacher, mask, chunk_size=chunk)
        loss.backward()
        times.append(time.perf_counter() - start)
        loss = loss.detach()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "variant": variant,
        "dtype": dtype_name,
        "peak_mib": (peak_kib - baseline_kib) / 1024,
        "inputs_mib": baseline_kib / 1024,
        "seconds": min(times),
        "chunk": chunk,
        "loss": loss.item(),
        "grad_abs_sum": float(student.grad.float().abs().sum()),
    }


def _run_variant(args: argparse.Namespace, variant: str, dtype_name: str) -> dict:
    command = [
        sys.executable, __file__, "--child", variant, "--dtypes", dtype_name, "--batch", str(args.batch),
        "--seq", str(args.seq), "--vocab", str(args.vocab), "--chunk-size", str(args.chunk_size or 0),
        "--threads", str(args.threads), "--repeats", str(args.repeats),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"variant {variant}/{dtype_name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _markdown(args: argparse.Namespace, results: list[dict]) -> str:
    import torch

    from kidsql.distill.divergences import auto_chunk_size

    one_copy_mib = args.batch * args.seq * args.vocab * 4 / 2**20
    chunk = args.chunk_size or auto_chunk_size(args.vocab)
    lines = [
        "# Divergence memory benchmark: RKL forward + backward",
        "",
        f"Shape [batch {args.batch}, seq {args.seq}, vocab {args.vocab:,}], every position masked in, "
        f"chunk size {chunk} positions{'' if args.chunk_size else ' (library default)'}; torch {torch.__version__}, "
        f"{args.threads} CPU threads, time = best of {args.repeats}, "
        f"{platform.processor() or platform.machine()}.",
        f"Peak = peak RSS of a fresh process during the loss minus its RSS once the inputs existed (one float32 "
        f"[B, T, V] copy is {one_copy_mib:,.0f} MiB); it includes the [B, T, V] gradient every variant must produce.",
        "",
        f"Command: `{' '.join(['python', 'benchmarks/divergence_memory.py', *sys.argv[1:]])}`",
        "",
        "| logits dtype | variant | peak over inputs (MiB) | vs naive | time fwd+bwd (s) | vs naive | loss |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for dtype_name in args.dtypes:
        rows = [r for r in results if r["dtype"] == dtype_name]
        naive = next((r for r in rows if r["variant"] == "naive"), None)
        for r in rows:
            mem_ratio = f"{r['peak_mib'] / naive['peak_mib']:.2f}x" if naive else "-"
            time_ratio = f"{r['seconds'] / naive['seconds']:.2f}x" if naive else "-"
            lines.append(
                f"| {dtype_name} | {r['variant']} | {r['peak_mib']:,.0f} | {mem_ratio} | {r['seconds']:.2f} | "
                f"{time_ratio} | {r['loss']:.6f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=150_000)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--chunk-size", type=int, default=0, help="positions per chunk (0: the library default)")
    parser.add_argument("--repeats", type=int, default=2, help="forward+backward runs per variant; time is the best")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "divergence_memory.md")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = _child(
            args.child, args.dtypes[0], args.batch, args.seq, args.vocab,
            args.chunk_size or None, args.threads, args.repeats,
        )  # fmt: skip
        print(json.dumps(result))
        return 0

    from tqdm import tqdm

    jobs = [(d, v) for d in args.dtypes for v in args.variants]
    results = []
    for dtype_name, variant in tqdm(jobs, desc="variants", unit="run"):
        results.append(_run_variant(args, variant, dtype_name))
    report = _markdown(args, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
