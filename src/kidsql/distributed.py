"""Several processes through `accelerate launch`: what a launch asked for against what it got, the relaunch that
makes `accelerate launch --cpu --num_processes N` really start N processes, and the model to generate with.

Why the relaunch. accelerate's launcher starts several processes through torch's elastic launcher only for
GPU-like backends (`--multi_gpu`, FSDP, DeepSpeed); with `--cpu` (or `use_cpu: true` in a config) it takes its
"simple" path, which starts ONE Python process and leaves spawning to `mpirun` (`--mpirun_hostfile`). Without
mpirun the one process sees no RANK or WORLD_SIZE, so accelerate sets up a single process: N was ignored without
a word. The simple launcher does export MASTER_ADDR/MASTER_PORT when N > 1, and its own command line holds N, so
`kidsql train|distill` started that way reads N from its parent `accelerate launch` and re-runs itself under
torch's elastic launcher with N processes on this machine (gloo on CPU), which is what `--multi_gpu` would do.
A library caller (no `kidsql` command to re-run) gets a one-line error instead.

What cannot be honoured is an error, not a quieter setup: accelerate runs FSDP and DeepSpeed only on GPU-like
devices (on CPU it would set up plain DDP over gloo while the config says FSDP), so a launch that asked for FSDP
or DeepSpeed and did not get it stops before any compute.

On-policy generation (GKD, ImitKD, f-distill's student half) and KID's rewrite pass follow TRL's
`unwrap_model_for_generation`: under DeepSpeed ZeRO-3 every parameter is gathered once for the whole decoding
(with ZeRO's per-module fetch hooks taken off meanwhile, or each layer would be fetched again at every token) and
the plain module generates; otherwise the model accelerate unwraps generates (DDP: the inner module; FSDP2: the
sharded model itself, whose every forward gathers its layers). Gradient checkpointing is off while generating.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kidsql.errors import KidsqlError

# Set in the processes kidsql started itself, so that they never relaunch again.
RELAUNCHED_ENV = "KIDSQL_RELAUNCHED"
_TRUE = ("1", "true", "yes")


def _flag(env: dict[str, str] | os._Environ, name: str) -> bool:
    return str(env.get(name, "")).lower() in _TRUE


def _parent_argv() -> list[str]:
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def launch_num_processes(argv: list[str]) -> int | None:
    """N of an `accelerate launch ...` command line (its options or its `--config_file`), or None if it is none."""
    if "launch" not in argv:
        return None
    i = argv.index("launch")
    if i == 0 or "accelerate" not in Path(argv[i - 1]).name:
        return None
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    try:
        args, _ = launch_command_parser().parse_known_args(argv[i + 1 :])
        args, _, _ = _validate_launch_command(args)  # folds in the config file, as the launcher itself does
    except (SystemExit, ValueError, OSError):
        return None
    return int(args.num_processes) if args.num_processes else None


def cpu_processes_requested(env: dict[str, str] | os._Environ | None = None, parent_argv: list[str] | None = None) -> int:
    """N > 1 when accelerate's simple CPU launcher was asked for N processes and started only this one; else 1.

    An error when N cannot be read (a launcher that is not `accelerate launch`, or several machines)."""
    env = os.environ if env is None else env
    lone = not any(k in env for k in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"))
    if not (_flag(env, "ACCELERATE_USE_CPU") and "MASTER_ADDR" in env and lone) or _flag(env, RELAUNCHED_ENV):
        return 1
    n = launch_num_processes(_parent_argv() if parent_argv is None else parent_argv)
    if n is None:
        raise KidsqlError(
            "accelerate's --cpu launcher started one process although several were asked for, and their number "
            "cannot be read; launch with `accelerate launch --multi_gpu --num_processes N` (CPU processes over gloo "
            "on a machine without GPUs) or `torchrun --nproc_per_node N -m kidsql.cli ...`"
        )
    return n


def relaunch(n: int, argv: list[str], env: dict[str, str] | None = None) -> int:
    """Run `python -m kidsql.cli ARGV` as `n` processes on this machine (torch's elastic launcher); its exit code."""
    env = dict(os.environ if env is None else env)
    env[RELAUNCHED_ENV] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--nnodes", "1",
           "--master_addr", env.get("MASTER_ADDR", "127.0.0.1"), "--master_port", env.get("MASTER_PORT", "29500"),
           "-m", "kidsql.cli", *argv]
    return subprocess.run(cmd, env=env, check=False).returncode


def check_launch(accelerator: Any, env: dict[str, str] | os._Environ | None = None,
                 parent_argv: list[str] | None = None) -> None:
    """Stop before any compute when the processes did not get what the launch asked for (see the module doc)."""
    from accelerate.utils import DistributedType

    env = os.environ if env is None else env
    kind = accelerator.distributed_type
    if cpu_processes_requested(env, parent_argv) > 1 and accelerator.num_processes == 1:
        raise KidsqlError(
            "`accelerate launch --cpu --num_processes N` started one process (accelerate spawns CPU processes only "
            "through mpirun); run it through the kidsql command (`accelerate launch --cpu --num_processes N -m "
            "kidsql.cli distill ...`, which starts the N processes), or launch with --multi_gpu"
        )
    if _flag(env, "ACCELERATE_USE_FSDP") and kind != DistributedType.FSDP:
        raise KidsqlError(
            f"the accelerate config asks for FSDP but accelerate set up {kind.value} (it runs FSDP only on GPUs; on "
            "a CPU it would train plain DDP); use configs/accelerate/ddp.yaml here, or the FSDP config on a GPU machine"
        )
    if _flag(env, "ACCELERATE_USE_DEEPSPEED") and kind != DistributedType.DEEPSPEED:
        raise KidsqlError(
            f"the accelerate config asks for DeepSpeed but accelerate set up {kind.value} (DeepSpeed needs a GPU and "
            "`pip install deepspeed`); use configs/accelerate/ddp.yaml here, or the DeepSpeed config on a GPU machine"
        )


def is_main_process() -> bool:
    """True in the process that prints summaries and writes shared files (rank 0, or the only process)."""
    from accelerate import PartialState

    if PartialState._shared_state:  # set up already: ask it (never set it up just to ask)
        return PartialState().is_main_process
    return int(os.environ.get("RANK", "0")) == 0


def _zero3(accelerator: Any) -> bool:
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return plugin is not None and getattr(plugin, "zero_stage", None) == 3


def _zero3_offload(engine: Any) -> Any:
    """The ZeRO-3 object whose module hooks fetch parameters (None before the first step: no hooks yet)."""
    optimizer = getattr(engine, "optimizer", None)
    return None if optimizer is None else getattr(optimizer, "parameter_offload", optimizer)


def _remove_zero3_hooks(engine: Any) -> None:
    """Take ZeRO-3's fetch/release hooks off while the gathered model generates (TRL's `remove_hooks`)."""
    offload = _zero3_offload(engine)
    if offload is None:
        return
    for _, param in offload.module.named_parameters(recurse=True):
        getattr(param, "ds_active_sub_modules", set()).clear()
    for hook in [*offload.forward_hooks, *offload.backward_hooks]:
        hook.remove()
    offload.forward_hooks, offload.backward_hooks = [], []


def _restore_zero3_hooks(engine: Any) -> None:
    """Put the hooks back, with the coordinator's recorded fetch order dropped (generation forwards broke it)."""
    offload = _zero3_offload(engine)
    if offload is None:
        return
    coordinator = getattr(offload, "param_coordinator", None)
    if coordinator is not None and not coordinator.is_invalid_trace():
        coordinator._invalidate_trace()
    register = getattr(offload, "_register_deepspeed_module", None) or offload._register_hooks_recursively
    register(offload.module)


@contextmanager
def unwrap_model_for_generation(model: Any, accelerator: Any) -> Iterator[Any]:
    """The plain model to generate (or run a no-grad rewrite pass) with, inside a prepared training run."""
    plain = accelerator.unwrap_model(model)
    checkpointing = bool(getattr(plain, "is_gradient_checkpointing", False))
    if checkpointing:
        plain.gradient_checkpointing_disable()
    try:
        if _zero3(accelerator):
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(model.parameters())):
                _remove_zero3_hooks(model)
                try:
                    yield accelerator.unwrap_model(model)
                finally:
                    _restore_zero3_hooks(model)
        else:
            yield plain
    finally:
        if checkpointing:
            plain.gradient_checkpointing_enable()
