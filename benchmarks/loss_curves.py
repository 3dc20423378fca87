"""Fixed-seed loss curves of every method (and KID's variants) for N steps: the before/after check of a refactor.

    PYTHONPATH=<worktree>/src python /work/tools/loss_curves.py OUT.json [--steps 6]
Prints and writes {run: [loss at every step]} (logging_steps=1), plus the per-term logs when present.
"""
import json, sys, tempfile
from pathlib import Path

out, steps = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 6
bench = Path.home() / ".cache/kidsql/benchmarks/cpu-seed0-v2"
import kidsql
from kidsql.shipped_teacher import SHIPPED_DIR
from kidsql.distill.config import load_config
from kidsql.distill.trainer import run_distill
print("kidsql from", kidsql.__file__, flush=True)
teacher = str(SHIPPED_DIR)
student = "teacher-layers:1"
from kidsql.pipeline import resolve_student
student = resolve_student(student, SHIPPED_DIR)
runs = {m: {} for m in ["sft", "seqkd", "fkd", "rkd", "fdistill", "imitkd", "gkd", "gkd-rkl", "kid"]}
runs.update({
    "kid-masking-only": {"kid_rewrite": "none"},
    "kid-mle-imperfect": {"kid_mle_on": "imperfect"},
    "kid-hard-sample": {"kid_strategy": "hard", "kid_rewrite": "sample"},
    "kid-rewritten-kl": {"kid_kl_positions": "rewritten", "divergence": "fkl"},
    "kid-no-reuse": {"reuse_prompt_kv": False},
    "rkd-share-prefix": {"share_prompt_prefix": True},
    "kid-share-prefix": {"share_prompt_prefix": True},
    "fkd-teacher-cache": {"teacher_cache_topk": 8},
})
result = {}
with tempfile.TemporaryDirectory() as tmp:
    for name, over in runs.items():
        method = name.split("-")[0] if name not in ("gkd-rkl",) else name
        cfg = load_config(None, method=method, teacher=teacher, student=student, data=str(bench), split="train",
                          output_dir=f"{tmp}/{name}", learning_rate=3e-4, max_steps=steps,
                          per_device_train_batch_size=8, seed=0, max_prompt_tokens=160, max_sql_tokens=112,
                          logging_steps=1, save_steps=1000, save_final=False, gen_max_new_tokens=48,
                          num_sample_values=0, matched_values=True, limit=400, tokenizer=teacher,
                          cache_dir=f"{tmp}/cache", **over)
        res = run_distill(cfg)
        result[name] = [{k: v for k, v in h.items() if k not in ("step_time_s", "tokens_per_s", "epoch", "learning_rate")}
                        for h in res.log_history if "loss" in h]
        print(name, [(h["loss"], round(h["grad_norm"], 6)) for h in result[name]], flush=True)
out.write_text(json.dumps(result, indent=1))
