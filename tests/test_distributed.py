"""2 CPU processes (gloo, `accelerate launch`) with per-device batch b == 1 process with batch 2b, step by step,
launched with --multi_gpu and with --cpu; launches that cannot be honoured are errors; FSDP2 generation on CPU.

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
        save_steps=1000, train_sampling_strategy="sequential", seed=0, bf16=False, **extra))
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
        # on the CPU over gloo (this script calls the library, so `--cpu`, whose N processes the kidsql command
        # starts itself, is tested below through the command). One process is launched plainly.
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


# ------------------------------------------------------------------- launches: --cpu, configs, FSDP, DeepSpeed

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "accelerate"


def _distill_args(bench: Path, spec: str, teacher: Path, out: Path, batch: int, method: str = "rkd") -> list[str]:
    return ["distill", "--method", method, "--teacher", str(teacher), "--student", spec, "--data", str(bench),
            "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", str(batch),
            "--learning_rate", "1e-2", "--logging_steps", "1", "--save_steps", "1000", "--train_sampling_strategy", "sequential", "--seed", "0",
            "--bf16", "false", "--cache_dir", str(out.parent / "cache")]


def _pair(tmp_path: Path) -> tuple[Path, str, Path]:
    from kidsql.models import load_tokenizer
    from _tiny import tiny_llama

    bench = write_benchmark(tmp_path / "bench")
    spec = "tiny:" + str(write_model_config(tmp_path))
    teacher = tmp_path / "teacher"
    tok = load_tokenizer(str(bench / "tokenizer"))
    tiny_llama(tok, seed=11).save_pretrained(teacher)
    tok.save_pretrained(teacher)
    return bench, spec, teacher


def _accelerate(*args: str) -> list[str]:
    return ["accelerate", "launch", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *args]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.mark.slow
def test_accelerate_cpu_launch_really_runs_two_processes(tmp_path) -> None:
    if shutil.which("accelerate") is None:
        pytest.skip("the `accelerate` launcher is not on PATH (pip install accelerate)")
    bench, spec, teacher = _pair(tmp_path)
    two = subprocess.run(
        _accelerate("--cpu", "--num_processes", "2", "--main_process_port", "29561", "-m", "kidsql.cli",
                    *_distill_args(bench, spec, teacher, tmp_path / "two", 2)),
        env=ENV, capture_output=True, text=True, timeout=400)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "kidsql.cli", *_distill_args(bench, spec, teacher, tmp_path / "one", 4)],
                         env=ENV, capture_output=True, text=True, timeout=400)
    assert one.returncode == 0, one.stderr[-3000:]
    r2 = json.loads((tmp_path / "two" / "train_result.json").read_text())
    r1 = json.loads((tmp_path / "one" / "train_result.json").read_text())
    assert (r2["num_processes"], r1["num_processes"]) == (2, 1)
    # rank 0 alone prints the summary
    assert [ln for ln in two.stdout.splitlines() if ln.startswith("method rkd:")] == [
        ln for ln in two.stdout.splitlines() if "on 2 processes" in ln] and two.stdout.count("method rkd:") == 1
    # 2 processes x batch 2 train exactly as 1 process x batch 4
    l2 = [h["loss"] for h in r2["log_history"] if "loss" in h]
    l1 = [h["loss"] for h in r1["log_history"] if "loss" in h]
    assert len(l1) == len(l2) == 2 and l2 == pytest.approx(l1, rel=1e-4) and l1[0] != pytest.approx(l1[1], rel=1e-4)


@pytest.mark.slow
def test_fsdp_config_on_cpu_is_an_error_not_plain_ddp(tmp_path) -> None:
    if shutil.which("accelerate") is None:
        pytest.skip("the `accelerate` launcher is not on PATH (pip install accelerate)")
    bench, spec, teacher = _pair(tmp_path)
    done = subprocess.run(
        _accelerate("--config_file", str(CONFIGS / "fsdp_full_shard.yaml"), "--num_processes", "2",
                    "--main_process_port", "29563", "-m", "kidsql.cli",
                    *_distill_args(bench, spec, teacher, tmp_path / "fsdp", 2)),
        env=ENV, capture_output=True, text=True, timeout=400)
    assert done.returncode != 0
    assert "kidsql distill: error: the accelerate config asks for FSDP but accelerate set up MULTI_CPU" in done.stderr
    assert not (tmp_path / "fsdp" / "train_result.json").exists()


def test_cpu_launch_request_is_read_from_the_accelerate_command_line(tmp_path) -> None:
    from kidsql.distributed import RELAUNCHED_ENV, cpu_processes_requested
    from kidsql.errors import KidsqlError

    env = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    launcher = ["/usr/bin/python3", "/venv/bin/accelerate", "launch"]
    tail = ["-m", "kidsql.cli", "distill", "--method", "kid"]
    assert cpu_processes_requested(env, launcher + ["--cpu", "--num_processes", "3", *tail]) == 3
    config = tmp_path / "cpu.yaml"
    config.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_CPU\nnum_machines: 1\n"
                      "num_processes: 2\nmachine_rank: 0\nmixed_precision: 'no'\nuse_cpu: true\n", encoding="utf-8")
    assert cpu_processes_requested(env, launcher + ["--config_file", str(config), *tail]) == 2
    # one process asked for (no MASTER_ADDR), already started by torchrun/kidsql, or no accelerate at all: 1
    assert cpu_processes_requested({"ACCELERATE_USE_CPU": "True"}, launcher + ["--cpu", *tail]) == 1
    assert cpu_processes_requested({**env, "WORLD_SIZE": "2"}, launcher + ["--cpu", "--num_processes", "2", *tail]) == 1
    assert cpu_processes_requested({**env, RELAUNCHED_ENV: "1"}, launcher + ["--cpu", "--num_processes", "2", *tail]) == 1
    assert cpu_processes_requested({}, ["python", "x.py"]) == 1
    with pytest.raises(KidsqlError, match="cannot be read"):
        cpu_processes_requested(env, ["mpirun", "-n", "2", "python", "x.py"])


def test_shipped_accelerate_configs_load_as_what_they_say() -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    ddp = load_config_from_file(str(CONFIGS / "ddp.yaml"))
    assert ddp.distributed_type == DistributedType.MULTI_GPU and not ddp.use_cpu
    fsdp = load_config_from_file(str(CONFIGS / "fsdp_full_shard.yaml"))
    assert fsdp.distributed_type == DistributedType.FSDP
    assert fsdp.fsdp_config["fsdp_version"] == 2 and fsdp.fsdp_config["fsdp_reshard_after_forward"] is True
    for stage in (2, 3):
        ds = load_config_from_file(str(CONFIGS / f"deepspeed_zero{stage}.yaml"))
        assert ds.distributed_type == DistributedType.DEEPSPEED and ds.deepspeed_config["zero_stage"] == stage
    # the FSDP plugin accelerate builds from the config is a full-shard FSDP2 one
    from accelerate.utils import FullyShardedDataParallelPlugin

    plugin = FullyShardedDataParallelPlugin(fsdp_version=2, reshard_after_forward=True,
                                            auto_wrap_policy=fsdp.fsdp_config["fsdp_auto_wrap_policy"].lower())
    assert plugin.reshard_after_forward is True


def test_deepspeed_runs_only_where_it_can() -> None:
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        pytest.skip("DeepSpeed is not installed: it needs CUDA (or Intel's oneCCL CPU bindings) to run ZeRO; "
                    "its configs are checked by test_shipped_accelerate_configs_load_as_what_they_say, and "
                    "kidsql.distributed.unwrap_model_for_generation gathers ZeRO-3 parameters as TRL does")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("DeepSpeed ZeRO needs a GPU (or Intel's oneCCL CPU bindings); none here")


FSDP_SCRIPT = r'''
import json, sys
import torch, torch.distributed as dist
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from accelerate import Accelerator
from torch.distributed.fsdp import fully_shard
from _tiny import tiny_llama, load_bench_tokenizer
from kidsql.distill.batches import SqlCollator, encode_examples
from kidsql.distill.config import load_config
from kidsql.distill.methods import GenerationOptions
from _kid import kid_rewrite
from kidsql.distill.sequences import student_generated
from kidsql.distill.trainer import training_prompts
from kidsql.distributed import unwrap_model_for_generation

bench, out = Path(sys.argv[1]), Path(sys.argv[2])
config = load_config(None, data=str(bench), student="x")  # first: TrainingArguments set up the process state
acc = Accelerator(cpu=True)
tok = load_bench_tokenizer(bench)
prompts, sqls = training_prompts(config, tok)
batch = SqlCollator(tok.pad_token_id)(encode_examples(tok, prompts[:3], sqls[:3]))
ref, model = tiny_llama(tok, seed=4), tiny_llama(tok, seed=4)
for layer in model.model.layers:
    fully_shard(layer)
fully_shard(model)  # FSDP2 full shard: every parameter is a DTensor shard
model.gradient_checkpointing_enable()
sharded = all(type(p).__name__ == "DTensor" for p in model.parameters())
gen = GenerationOptions(max_new_tokens=6, do_sample=True, temperature=1.0)
res = {"world": acc.num_processes, "sharded": sharded}
with unwrap_model_for_generation(model, acc) as plain:
    res["checkpointing_off_inside"] = not plain.is_gradient_checkpointing
    torch.manual_seed(7)
    s = student_generated(plain, batch, gen, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    g = torch.Generator().manual_seed(3)
    y_hat, chosen = kid_rewrite(plain, batch["input_ids"], batch["sql_mask"], alpha=0.5, mask_token_id=tok.bos_token_id,
                                        generator=g, attention_mask=batch["attention_mask"], eos_token_id=tok.eos_token_id)
res["checkpointing_back_after"] = model.is_gradient_checkpointing
torch.manual_seed(7)
s_ref = student_generated(ref, batch, gen, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
g = torch.Generator().manual_seed(3)
y_ref, chosen_ref = kid_rewrite(ref, batch["input_ids"], batch["sql_mask"], alpha=0.5, mask_token_id=tok.bos_token_id,
                                        generator=g, attention_mask=batch["attention_mask"], eos_token_id=tok.eos_token_id)
res["generated_equal"] = torch.equal(s["input_ids"], s_ref["input_ids"])
res["rewrite_equal"] = torch.equal(y_hat, y_ref) and torch.equal(chosen, chosen_ref)
res["rewrote_something"] = bool((y_hat != batch["input_ids"]).any())
# training on the generated sequences through the sharded model: same loss and (all-reduced) gradients
model.train(); ref.train()
loss = model(input_ids=s["input_ids"], attention_mask=s["attention_mask"], labels=s["input_ids"]).loss
loss.backward()
ref_loss = ref(input_ids=s_ref["input_ids"], attention_mask=s_ref["attention_mask"], labels=s_ref["input_ids"]).loss
ref_loss.backward()
res["loss"], res["ref_loss"] = float(loss.detach()), float(ref_loss.detach())
res["grad_max_diff"] = max(float((p.grad.full_tensor() - q.grad).abs().max())
                           for p, q in zip(model.parameters(), ref.parameters()))
if dist.get_rank() == 0:
    (out / "fsdp.json").write_text(json.dumps(res))
'''


@pytest.mark.slow
def test_on_policy_generation_and_kid_rewrite_under_fsdp2_full_shard_on_cpu(tmp_path) -> None:
    """accelerate runs FSDP on GPUs only, so the sharding is torch's FSDP2 `fully_shard` over gloo directly: the
    generation path the trainer takes (`unwrap_model_for_generation` + sampling / KID's rewrite) on a fully sharded
    student gives the unsharded model's sequences, and training through the shards gives its gradients."""
    fsdp = pytest.importorskip("torch.distributed.fsdp")
    if not hasattr(fsdp, "fully_shard"):
        pytest.skip("this torch has no FSDP2 (`fully_shard`, torch >= 2.6), the FSDP that runs on CPU over gloo")
    bench = write_benchmark(tmp_path / "bench")
    script = tmp_path / "fsdp_run.py"
    script.write_text(FSDP_SCRIPT, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29567", str(script), str(bench), str(tmp_path), str(Path(__file__).parent)],
                          env=ENV, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads((tmp_path / "fsdp.json").read_text())
    assert res["world"] == 2 and res["sharded"]
    assert res["checkpointing_off_inside"] and res["checkpointing_back_after"]
    assert res["generated_equal"] and res["rewrite_equal"] and res["rewrote_something"]
    assert res["loss"] == pytest.approx(res["ref_loss"], rel=1e-5)
    assert res["grad_max_diff"] < 1e-5


def test_a_launch_that_cannot_be_honoured_is_a_one_line_error() -> None:
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from kidsql.distributed import check_launch
    from kidsql.errors import KidsqlError

    cpu = SimpleNamespace(distributed_type=DistributedType.MULTI_CPU, num_processes=2)
    check_launch(cpu, env={})  # nothing asked for, nothing to refuse
    with pytest.raises(KidsqlError, match="asks for FSDP but accelerate set up MULTI_CPU"):
        check_launch(cpu, env={"ACCELERATE_USE_FSDP": "true"})
    check_launch(SimpleNamespace(distributed_type=DistributedType.FSDP, num_processes=2), env={"ACCELERATE_USE_FSDP": "true"})
    with pytest.raises(KidsqlError, match="asks for DeepSpeed"):
        check_launch(cpu, env={"ACCELERATE_USE_DEEPSPEED": "true"})
    # a library call under `accelerate launch --cpu --num_processes 2`: one process, so an error naming the fix
    lone = SimpleNamespace(distributed_type=DistributedType.NO, num_processes=1)
    env = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    argv = ["python", "/venv/bin/accelerate", "launch", "--cpu", "--num_processes", "2", "script.py"]
    with pytest.raises(KidsqlError, match="started one process"):
        check_launch(lone, env=env, parent_argv=argv)
