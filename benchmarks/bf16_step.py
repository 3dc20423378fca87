"""What bf16 autocast buys a CPU training step: fp32 vs bf16 forward+backward+AdamW of one tiny Llama.

    python benchmarks/bf16_step.py [--model 3m] [--batch 16] [--tokens 165] [--rounds 3] [--steps 5]

`kidsql.precision.auto_bf16_autocast` turns bf16 autocast on by default (`--bf16 auto`) on CPUs with native
bf16 (avx512_bf16 / AMX) and off elsewhere; this is the measurement behind that default. The two modes run
side by side in interleaved rounds on the same model and batch (random weights and tokens: timing does not need
trained ones), and the table reports each mode's median step time and the fp32/bf16 ratio, plus the relative
difference of the loss under both (what autocast costs in precision on this step). The batch shape defaults
to the demo's: 16 sequences of ~165 tokens (the cpu preset's prompts at a 160-token budget plus the SQL).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from kidsql.precision import auto_bf16_autocast
from kidsql.models import TINY_CONFIGS
from kidsql.files import write_atomic


def step_seconds(model: torch.nn.Module, opt: torch.optim.Optimizer, ids: torch.Tensor, bf16: bool, steps: int) -> list[float]:
    """Wall seconds of `steps` full optimiser steps (after one untimed warm-up step)."""
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="3m", choices=sorted(TINY_CONFIGS))
    parser.add_argument("--vocab", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=165)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per mode per round")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bf16_step.md"))
    args = parser.parse_args()

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=args.vocab, max_position_embeddings=2048, **TINY_CONFIGS[args.model]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, args.vocab, (args.batch, args.tokens))
    with torch.no_grad():
        fp32 = model(input_ids=ids, labels=ids).loss.item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(input_ids=ids, labels=ids).loss.item()
    per_round: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r in range(args.rounds):
        for mode in ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32"):
            per_round[mode].append(statistics.mean(step_seconds(model, opt, ids, mode == "bf16", args.steps)))
    med = {mode: statistics.median(v) for mode, v in per_round.items()}
    lines = [
        f"# bf16 autocast vs fp32: one training step of tiny:{args.model} on CPU",
        "",
        f"`python benchmarks/bf16_step.py --model {args.model} --batch {args.batch} --tokens {args.tokens} "
        f"--rounds {args.rounds} --steps {args.steps}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, bf16 on by default here (`auto_bf16_autocast`): {auto_bf16_autocast()}.",
        "",
        "| mode | median step (s) | per round (s) | fp32 / mode |",
        "|---|---:|---|---:|",
    ]
    for mode in ("fp32", "bf16"):
        rounds = ", ".join(f"{s:.3f}" for s in per_round[mode])
        lines.append(f"| {mode} | {med[mode]:.3f} | {rounds} | {med['fp32'] / med[mode]:.2f}x |")
    lines += ["", f"Loss of the same batch: fp32 {fp32:.5f}, bf16 autocast {bf16:.5f} "
                  f"(relative difference {abs(bf16 - fp32) / fp32:.1e})."]
    text = "\n".join(lines) + "\n"
    print(text)
    write_atomic(Path(args.out), text)


if __name__ == "__main__":
    main()
