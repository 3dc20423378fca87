"""How fast a tiny teacher learns a benchmark: loss, and dev/train EX every N steps, on this machine's CPU.

    python benchmarks/teacher_curve.py --data DIR --out DIR [--model tiny:4m] [--steps 1200] [--every 200]
        [--batch 16] [--lr 3e-3] [--warmup 50] [--scheduler cosine] [--bf16 false] [--max-prompt-tokens 512]

Why it exists: `kidsql demo` must train a teacher to >= 60 % dev EX within its 10-minute CPU budget, so what
matters is EX against steps and seconds. Training is kidsql's own (`kidsql.experiments.steps.train_student` with
method sft, the teacher's path); the curve points come from the bench's learning-curve callback (greedy SQL for
the first `--eval-size` examples of dev and of train, scored by execution), written as JSON lines to
`OUT/dev.jsonl` and `OUT/train.jsonl`; the Trainer's log (loss, step time, tokens/s) is in
`OUT/trainer_state.json` of the last checkpoint and on the console. Results and their settings:
`docs/results/cpu-teacher-experiments.md`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="benchmark folder with tokenizer/ (kidsql data synth)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", default="tiny:4m")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--every", type=int, default=200, help="curve point every N steps (0: none)")
    ap.add_argument("--eval-size", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=float, default=0.0)
    ap.add_argument("--scheduler", default="linear")
    ap.add_argument("--bf16", default="false", help="true: bf16 autocast (also on CPU)")
    ap.add_argument("--max-prompt-tokens", type=int, default=512)
    args = ap.parse_args()

    from kidsql.experiments import steps
    from kidsql.experiments.config import Budget
    from kidsql.experiments.curves import dev_curve_callback, read_curve
    from kidsql.models import load_tokenizer

    budget = Budget(args.steps, args.batch, args.lr, args.max_prompt_tokens, 112, save_steps=10**9)
    tok = load_tokenizer(str(args.data / "tokenizer"))
    curves = [dev_curve_callback(args.data, tok, args.out / f"{split}.jsonl", every=args.every, size=args.eval_size,
                                   split=split, max_prompt_tokens=args.max_prompt_tokens, batch_size=50)
              for split in ("dev", "train")] if args.every > 0 else []
    start = time.perf_counter()
    result = steps.train_student(args.data, "sft", args.model, None, args.out, budget, callbacks=curves,
                             overrides={"warmup_steps": args.warmup, "lr_scheduler_type": args.scheduler,
                                        "bf16": args.bf16})
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": round(seconds, 1), "steps": args.steps, "model_dir": str(result.model_dir),
                      "dev": read_curve(args.out / "dev.jsonl"), "train": read_curve(args.out / "train.jsonl")}))


if __name__ == "__main__":
    main()
