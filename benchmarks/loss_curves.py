"""Fixed-seed loss curves of every method and KID's variants: the before/after check of a refactor of the trainer.

Each run distils the shipped teacher's first layer (`teacher-layers:1`) on the first 400 training questions of the
embedded `cpu` benchmark for `--steps` steps (batch 8, one log per step, nothing saved) and records every logged
value but the timings. `--compare OLD.json` says, per run, whether the loss and the gradient norm are identical to
the digit at every step.

    python benchmarks/loss_curves.py --out curves.json [--steps 6] [--compare before.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

RUNS: dict[str, tuple[str, dict]] = {
    **{m: (m, {}) for m in ["sft", "seqkd", "fkd", "rkd", "fdistill", "imitkd", "gkd", "gkd-rkl", "kid"]},
    "kid-masking-only": ("kid", {"kid_rewrite": "none"}),
    "kid-mle-imperfect": ("kid", {"kid_mle_on": "imperfect"}),
    "kid-hard-sample": ("kid", {"kid_strategy": "hard", "kid_rewrite": "sample"}),
    "kid-rewritten-kl": ("kid", {"kid_kl_positions": "rewritten", "divergence": "fkl"}),
    "kid-no-reuse": ("kid", {"reuse_prompt_kv": False}),
    "rkd-share-prefix": ("rkd", {"share_prompt_prefix": True}),
    "kid-share-prefix": ("kid", {"share_prompt_prefix": True}),
    "fkd-teacher-cache": ("fkd", {"teacher_cache_topk": 8}),
}
TIMINGS = {"step_time_s", "tokens_per_s"}


def curves(steps: int) -> dict[str, list[dict]]:
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import run_distill
    from kidsql.experiments.shipped_teacher import SHIPPED_DIR
    from kidsql.experiments.steps import ensure_benchmark, resolve_student

    bench, teacher = ensure_benchmark("cpu", 0), str(SHIPPED_DIR)
    student = resolve_student("teacher-layers:1", SHIPPED_DIR)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (method, options) in RUNS.items():
            cfg = load_config(None, method=method, teacher=teacher, student=student, data=str(bench), tokenizer=teacher,
                              output_dir=f"{tmp}/{name}", learning_rate=3e-4, max_steps=steps,
                              per_device_train_batch_size=8, seed=0, max_prompt_tokens=160, max_sql_tokens=112,
                              logging_steps=1, save_steps=1000, save_final=False, gen_max_new_tokens=48,
                              num_sample_values=0, matched_values=True, limit=400, cache_dir=f"{tmp}/cache", **options)
            history = run_distill(cfg).log_history
            out[name] = [{k: v for k, v in h.items() if k not in TIMINGS} for h in history if "loss" in h]
            print(name, [(h["loss"], h["grad_norm"]) for h in out[name]], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--compare", type=Path, help="an earlier --out file")
    args = parser.parse_args()
    new = curves(args.steps)
    args.out.write_text(json.dumps(new, indent=1))
    if args.compare:
        old = json.loads(args.compare.read_text())
        for name, rows in old.items():
            same = [(h["loss"], h["grad_norm"]) for h in rows] == [(h["loss"], h["grad_norm"]) for h in new.get(name, [])]
            print(f"{name:20s} {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
