"""Step time of every distillation method on one tiny teacher/student pair, as ratios to SFT.

    python benchmarks/step_time.py [--steps 6] [--rounds 3] [--batch 8] [--teacher tiny:8m] [--student tiny:1m]

The paper's latencies relative to SFT: RKD 1.4-2.3x, KID 1.5-2.4x, GKD 8.3-14.1x. Budget checked here: a KID
step must cost at most 1.15x an RKD step (KID = RKD + one no-grad student forward). Both KID MLE variants are
measured: `mle_on=clean` (default: the clean (x, y) stacked with (x, y_hat) in one doubled forward) and
`mle_on=imperfect` (MLE on the same forward over y_hat), each with and without the prompt reuse (`reuse_prompt_kv`, `kidsql.distill.sequences.PromptPrefix`).

Setup: the embedded benchmark (`kidsql data synth`, size small) in a temporary folder, randomly initialised tiny
Llamas (timing does not need trained weights). On-policy methods decode up to `--gen-tokens` new tokens; an
untrained student rarely emits EOS, so their numbers are an upper bound for that length. Methods run in
interleaved rounds (every method once per round) so that background load hits all of them alike; the table
reports the median over rounds of each round's mean step time (the first `--warmup` steps of a run excluded),
in CPU seconds of this process with 1 torch thread (the development machine is shared; wall time there moved by
2-3x between identical runs, CPU time by a few %), plus wall time for reference.
Teacher-generated sequences (SeqKD, f-distill) are generated once before training; that one-off cost is
excluded from the step time and reported separately.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

VARIANTS: list[tuple[str, str, dict]] = [
    ("sft", "sft", {}),
    ("seqkd", "seqkd", {}),
    ("fkd", "fkd", {}),
    ("rkd", "rkd", {}),
    ("kid", "kid", {}),
    ("kid (no prompt reuse)", "kid", {"reuse_prompt_kv": False}),
    ("kid (mle_on=imperfect)", "kid", {"kid_mle_on": "imperfect"}),
    ("kid (mle_on=imperfect, no prompt reuse)", "kid", {"kid_mle_on": "imperfect", "reuse_prompt_kv": False}),
    ("imitkd", "imitkd", {}),
    ("fdistill", "fdistill", {}),
    ("gkd", "gkd", {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="measured steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="steps excluded at the start of each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--teacher", default="tiny:8m")
    parser.add_argument("--student", default="tiny:1m")
    parser.add_argument("--gen-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time == compute)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "step_time.md"))
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from common import CpuClock, tiny_bench_pair

    torch.set_num_threads(args.threads)

    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import build_trainer
    from kidsql.files import write_atomic

    hf_logging.set_verbosity_error()
    work, bench, teacher_dir, tok = tiny_bench_pair(args.teacher, "kidsql-step-time-")

    times: dict[str, list[float]] = {label: [] for label, _, _ in VARIANTS}
    cpu: dict[str, list[float]] = {label: [] for label, _, _ in VARIANTS}
    one_off: dict[str, float] = {}
    for r in range(args.rounds):
        for label, method, extra in VARIANTS:
            config = load_config(
                None, method=method, teacher=str(teacher_dir), student=args.student, data=str(bench),
                output_dir=str(work / "runs" / f"{label}-{r}"), max_steps=args.warmup + args.steps,
                per_device_train_batch_size=args.batch, logging_steps=10_000, save_steps=10_000, save_final=False,
                gen_max_new_tokens=args.gen_tokens, cache_dir=str(work / "cache"), seed=r,
                limit=args.batch * (args.warmup + args.steps), disable_tqdm=True, **extra,
            )
            t0 = time.perf_counter()
            clock = CpuClock()
            trainer = build_trainer(config, callbacks=[clock])
            one_off.setdefault(label, time.perf_counter() - t0)
            trainer.train()
            steps = trainer.speed.step_times[args.warmup:]
            times[label].append(sum(steps) / len(steps))
            cpu[label].append(statistics.mean(clock.times[args.warmup:]))
            print(f"round {r + 1}/{args.rounds} {label:>20}: {times[label][-1] * 1000:8.1f} ms/step wall, "
                  f"{cpu[label][-1] * 1000:8.1f} ms CPU", flush=True)

    med = {k: statistics.median(v) for k, v in cpu.items()}
    wall = {k: statistics.median(v) for k, v in times.items()}
    sft, rkd, kid = med["sft"], med["rkd"], med["kid"]
    lines = [
        "# Step time per method (ratio to SFT)",
        "",
        f"`python benchmarks/step_time.py --steps {args.steps} --rounds {args.rounds} --batch {args.batch}` - "
        f"teacher {args.teacher}, student {args.student}, batch {args.batch}, on-policy decoding up to "
        f"{args.gen_tokens} tokens; {platform.machine()} CPU, {torch.get_num_threads()} torch thread(s), "
        f"load average {os.getloadavg()[0]:.1f} at the end. CPU ms = this process's CPU time per step (the ratios "
        "use it: robust to other jobs' load); wall ms for reference. Medians over rounds.",
        "",
        "| method | CPU ms / step | x SFT | x RKD | wall ms / step | CPU ms per round |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, _, _ in VARIANTS:
        rounds = ", ".join(f"{t * 1000:.0f}" for t in cpu[label])
        lines.append(f"| {label} | {med[label] * 1000:.1f} | {med[label] / sft:.2f}x | {med[label] / rkd:.2f}x | "
                     f"{wall[label] * 1000:.1f} | {rounds} |")
    lines += [
        "",
        f"KID / RKD = {kid / rkd:.3f} (budget 1.15): {'within budget' if kid / rkd <= 1.15 else 'OVER BUDGET'}; "
        f"KID without the prompt reuse / RKD = {med['kid (no prompt reuse)'] / rkd:.3f}; "
        f"KID with mle_on=imperfect / RKD = {med['kid (mle_on=imperfect)'] / rkd:.3f}.",
        f"One-off teacher generation before training (SeqKD, excluded above): "
        f"{one_off['seqkd'] - one_off['sft']:.1f} s more set-up than SFT.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    write_atomic(Path(args.out), text)


if __name__ == "__main__":
    main()
