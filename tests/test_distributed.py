"""2 CPU processes (gloo, `accelerate launch`) with per-device batch b == 1 process with batch 2b, step by step.

This is what the global per-token normalisation in `DistillTrainer.compute_loss` is for: SQL token counts are
gathered from all processes, so the loss (and its gradient) is the mean over the GLOBAL batch, not a mean of
per-process means (which would differ whenever the two halves hold different numbers of SQL tokens).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import write_benchmark, write_model_config  # noqa: E402

SCRIPT = r'''
import json, sys
from pathlib import Path
from kidsql.distill.config import load_config
from kidsql.distill.trainer import run_distill

bench, spec, teacher, out, batch = sys.argv[1:6]
results = {}
for method, extra in [("rkd", {}), ("kid", {"kid_strategy": "uniform", "kid_alpha": 0.3})]:
    r = run_distill(load_config(
        None, method=method, teacher=teacher, student=spec, data=bench, output_dir=f"{out}/{method}",
        max_steps=4, per_device_train_batch_size=int(batch), learning_rate=1e-2, logging_steps=1,
        save_steps=1000, shuffle=False, seed=0, bf16="false", **extra))
    results[method] = [(h["loss"], h["grad_norm"]) for h in r.log_history if "loss" in h]
import torch.distributed as dist
results["world_size"] = dist.get_world_size() if dist.is_initialized() else 1
results["backend"] = dist.get_backend() if dist.is_initialized() else None
if not dist.is_initialized() or dist.get_rank() == 0:
    Path(out, "losses.json").write_text(json.dumps(results))
'''


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path) -> None:
    if shutil.which("accelerate") is None:
        pytest.skip("the `accelerate` launcher is not on PATH (pip install accelerate)")
    from kidsql.models import load_tokenizer
    from _tiny import tiny_llama

    bench = write_benchmark(tmp_path / "bench")
    spec = "tiny:" + str(write_model_config(tmp_path))
    teacher = tmp_path / "teacher"
    tok = load_tokenizer(str(bench / "tokenizer"))
    tiny_llama(tok, seed=11).save_pretrained(teacher)
    tok.save_pretrained(teacher)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}

    def launch(n: int, batch: int) -> dict:
        out = tmp_path / f"p{n}"
        # `--multi_gpu` picks accelerate's torch.distributed launcher; on a machine without GPUs the trainer runs
        # on the CPU over gloo. (`--cpu` would start ONE process.) One process is launched plainly.
        launcher = (["accelerate", "launch", "--multi_gpu", "--num_processes", str(n), "--num_machines", "1",
                     "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(29500 + 7 * n)]
                    if n > 1 else [sys.executable])
        cmd = launcher + [str(script), str(bench), spec, str(teacher), str(out), str(batch)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads((out / "losses.json").read_text())

    two = launch(2, 2)
    one = launch(1, 4)
    assert (two["world_size"], two["backend"]) == (2, "gloo") and one["world_size"] == 1
    for method in ("rkd", "kid"):
        assert len(one[method]) == len(two[method]) == 4
        for (l1, g1), (l2, g2) in zip(one[method], two[method]):
            assert l2 == pytest.approx(l1, rel=1e-4), method
            assert g2 == pytest.approx(g1, rel=1e-4), method
        # the trajectory moved: equality is not the trivial "nothing happened"
        assert one[method][0][0] != pytest.approx(one[method][-1][0], rel=1e-3)
