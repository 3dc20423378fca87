"""The teacher-logit cache's saving: a bench's training part (FKD and RKD over several seeds) with and without it.

    python benchmarks/teacher_cache.py [--seeds 3] [--steps 12] [--batch 8] [--limit 256] [--topk 64]
                                       [--teacher tiny:8m] [--student tiny:1m]

Without the cache every step runs the teacher over the batch (`--teacher_cache_topk 0`); with it the teacher runs
once over the `--limit` training examples before the first run (the build, timed and charged to the cached
side) and every step reads its top-k log-probabilities from disk (`--teacher_cache_topk K`). Runs are interleaved
(live, then cached, for each method and seed), so background load hits both alike. Reported: the training wall
time of the whole loop (set-up, cache build and training of every run; evaluation is the same either way and is
left out), the CPU time of the same, the median step time (CPU and wall, first step excluded), and the first
step's loss live and cached: with k < V the divergence term is a lower bound of the live one
(`kidsql.distill.divergences.topk_divergence`), so the two differ slightly.

Setup: the embedded benchmark (`kidsql data synth`, size small) in a temporary folder, randomly initialised tiny
Llamas (timing does not need trained weights), 1 torch thread.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="optimiser steps per run")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--limit", type=int, default=256, help="training examples (what the cache build covers)")
    parser.add_argument("--topk", type=int, default=64)
    parser.add_argument("--methods", default="fkd,rkd")
    parser.add_argument("--teacher", default="tiny:8m")
    parser.add_argument("--student", default="tiny:1m")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "teacher_cache.md"))
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import build_trainer
    from kidsql.files import write_atomic

    from common import CpuClock, tiny_bench_pair

    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()
    work, bench, teacher_dir, tok = tiny_bench_pair(args.teacher, "kidsql-teacher-cache-")

    totals = {"live": [0.0, 0.0], "cached": [0.0, 0.0]}  # wall, CPU
    steps: dict[str, list[float]] = {"live": [], "cached": []}
    steps_wall: dict[str, list[float]] = {"live": [], "cached": []}
    first_loss: dict[tuple[str, str], list[float]] = {}
    build_s = None
    for seed in range(args.seeds):
        for method in args.methods.split(","):
            for side, k in (("live", 0), ("cached", args.topk)):
                config = load_config(
                    None, method=method, teacher=str(teacher_dir), student=args.student, data=str(bench),
                    output_dir=str(work / "runs" / f"{side}-{method}-{seed}"), max_steps=args.steps,
                    per_device_train_batch_size=args.batch, logging_steps=1, save_steps=10_000, save_final=False,
                    cache_dir=str(work / "cache"), seed=seed, limit=args.limit, teacher_cache_topk=k, bf16=False,
                    disable_tqdm=True)
                t0, c0 = time.perf_counter(), time.process_time()
                clock = CpuClock()
                trainer = build_trainer(config, callbacks=[clock])
                if side == "cached" and build_s is None:
                    build_s = time.perf_counter() - t0  # the first cached set-up includes the one-off build
                trainer.train()
                totals[side][0] += time.perf_counter() - t0
                totals[side][1] += time.process_time() - c0
                steps[side] += clock.times[1:]
                steps_wall[side] += trainer.speed.step_times[1:]
                loss = next(h["loss"] for h in trainer.state.log_history if "loss" in h)
                first_loss.setdefault((method, side), []).append(loss)
                print(f"seed {seed} {method} {side:>6}: {totals[side][0]:7.1f} s so far", flush=True)

    med = {s: statistics.median(v) for s, v in steps.items()}
    med_wall = {s: statistics.median(v) for s, v in steps_wall.items()}
    runs = args.seeds * len(args.methods.split(","))
    lines = [
        "# Teacher-logit cache: bench training time with and without it",
        "",
        f"`python benchmarks/teacher_cache.py --seeds {args.seeds} --steps {args.steps} --batch {args.batch} "
        f"--limit {args.limit} --topk {args.topk} --teacher {args.teacher} --student {args.student}` - "
        f"{runs} runs per side ({args.methods} x {args.seeds} seeds), {args.limit} training examples, vocabulary "
        f"{len(tok)}; {platform.machine()} CPU, 1 torch thread, load average {os.getloadavg()[0]:.1f} at the end "
        "(the machine was shared with other jobs: compare the two sides of this one run, not absolute times).",
        "",
        "| | live teacher | cached top-k | cached / live |",
        "|---|---:|---:|---:|",
        f"| training wall time of all runs, s | {totals['live'][0]:.1f} | {totals['cached'][0]:.1f} | "
        f"{totals['cached'][0] / totals['live'][0]:.2f}x |",
        f"| CPU time of all runs, s | {totals['live'][1]:.1f} | {totals['cached'][1]:.1f} | "
        f"{totals['cached'][1] / totals['live'][1]:.2f}x |",
        f"| median step, CPU ms | {med['live'] * 1000:.1f} | {med['cached'] * 1000:.1f} | {med['cached'] / med['live']:.2f}x |",
        f"| median step, wall ms | {med_wall['live'] * 1000:.1f} | {med_wall['cached'] * 1000:.1f} | "
        f"{med_wall['cached'] / med_wall['live']:.2f}x |",
        "",
        f"The cached side's first set-up, cache build included: {build_s:.1f} s (charged to the cached total).",
        "",
        "| method | first-step loss, live (mean over seeds) | cached top-k |",
        "|---|---:|---:|",
    ]
    for method in args.methods.split(","):
        lines.append(f"| {method} | {statistics.mean(first_loss[(method, 'live')]):.5f} | "
                     f"{statistics.mean(first_loss[(method, 'cached')]):.5f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_atomic(Path(args.out), text)


if __name__ == "__main__":
    main()
