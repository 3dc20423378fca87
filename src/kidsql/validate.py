"""Every option's valid range, and the input/output paths of a run, checked before any work starts.

Why one table: `kidsql train|distill|demo|bench` share most option names (learning rates, steps, token budgets),
and a bad value must fail the same way wherever it is typed: one line naming the option, the value and the valid
range, before a model is loaded or a folder is written. Left to transformers, `--max_steps 0` would train one
step, `--max_steps -5` full epochs, `--gradient_accumulation_steps 0` would die in a ZeroDivisionError, and
`--eval_limit 0` would mean "everything". The config dataclasses call `check_options` from `__post_init__`, so a config built in code
is checked like one typed on the command line.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kidsql.errors import KidsqlError


@dataclass(frozen=True)
class Rule:
    """A test of one value and the valid range in words, for the error message."""

    test: Callable[[Any], bool]
    valid: str


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def at_least(low: int, *, optional: bool = False, note: str = "") -> Rule:
    words = f"an integer >= {low}" + (f" ({note})" if note else "") + (", or unset" if optional else "")
    return Rule(lambda v: (optional and v is None) or (_is_int(v) and v >= low), words)


def number(low: float, *, strict: bool = False, high: float | None = None, high_strict: bool = False,
           optional: bool = False, note: str = "") -> Rule:
    """A finite number in [low, high] (open ends with `strict` / `high_strict`); nan and inf never pass."""
    def test(v: Any) -> bool:
        if optional and v is None:
            return True
        if not _is_number(v) or v < low or (strict and v == low):
            return False
        return high is None or (v < high if high_strict else v <= high)

    lo = f"> {low:g}" if strict else f">= {low:g}"
    hi = "" if high is None else (f" and < {high:g}" if high_strict else f" and <= {high:g}")
    return Rule(test, f"a finite number {lo}{hi}" + (f" ({note})" if note else "") + (", or unset" if optional else ""))


def one_of(*choices: str) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v.lower() in choices, "one of " + ", ".join(choices))


def _schedulers() -> Rule:
    from transformers.trainer_utils import SchedulerType

    return one_of(*(s.value for s in SchedulerType))


def _bench_sizes() -> Rule:
    from kidsql.data.synth import SIZES

    return one_of(*SIZES)


# Field name -> rule, for every config dataclass that has the field (DistillConfig, RunConfig, DemoConfig,
# BenchConfig). A callable value builds its rule on first use (it needs an import).
RULES: dict[str, Rule | Callable[[], Rule]] = {
    # optimisation (DistillConfig)
    "learning_rate": number(0, strict=True),
    "num_train_epochs": number(0, strict=True),
    "max_steps": Rule(lambda v: _is_int(v) and (v == -1 or v >= 1),
                      "an integer >= 1, or -1 to train for num_train_epochs"),
    "per_device_train_batch_size": at_least(1),
    "gradient_accumulation_steps": at_least(1),
    "lr_scheduler_type": _schedulers,
    "warmup_steps": number(0),
    "weight_decay": number(0),
    "max_grad_norm": number(0, note="0: no clipping"),
    "data_kind": one_of("auto", "spider", "bird", "jsonl"),
    "limit": at_least(1, optional=True),
    "max_prompt_tokens": at_least(1),
    "max_sql_tokens": at_least(1),
    "num_sample_values": at_least(0),
    "chunk_size": at_least(1, optional=True),
    "logging_steps": at_least(1),
    "save_steps": at_least(1),
    "save_total_limit": at_least(1, optional=True),
    "lora_r": at_least(1),
    "lora_alpha": at_least(1),
    "lora_dropout": number(0, high=1, high_strict=True),
    "mle_weight": number(0, optional=True, note="0 drops the MLE term"),
    "temperature": number(0, strict=True, optional=True),
    "gen_max_new_tokens": at_least(1),
    "gen_temperature": number(0, strict=True, optional=True, note="unset: the method's reference value"),
    "gen_top_p": number(0, strict=True, high=1, optional=True, note="unset: the method's reference value"),
    "gen_top_k": at_least(0, optional=True, note="0: off; unset: the method's reference value"),
    "gen_batch_size": at_least(1),
    # demo / bench (RunConfig and its subclasses)
    "bench_size": _bench_sizes,
    "teacher_steps": at_least(0, note="0: use --teacher, a trained folder, as is"),
    "student_steps": at_least(1),
    "batch_size": at_least(1),
    "teacher_learning_rate": number(0, strict=True),
    "train_limit": at_least(1, optional=True),
    "eval_limit": at_least(1, optional=True, note="unset: every example"),
    "max_new_tokens": at_least(1),
    "eval_workers": at_least(1, optional=True),
    "seeds": at_least(1),
    "curve_every": at_least(0, note="0: no learning curve"),
    "curve_size": at_least(1),
}


def rule(name: str) -> Rule:
    r = RULES[name]
    if not isinstance(r, Rule):
        r = RULES[name] = r()
    return r


def check_value(name: str, value: Any, option: str | None = None) -> None:
    """One value against the rule of `name`; the message names `option` (default `--<name>`)."""
    r = rule(name)
    if not r.test(value):
        raise KidsqlError(f"{option or '--' + name} {value!r}: must be {r.valid}; fix the option (or the --config file)")


def check_options(config: Any) -> None:
    """Every field of a config dataclass that has a rule; a DistillConfig's method and its overrides too."""
    for f in dataclasses.fields(config):
        if f.name in RULES:
            check_value(f.name, getattr(config, f.name))
    if hasattr(config, "method_overrides"):  # DistillConfig: an unknown method or a bad kid_* value fails here
        from kidsql.distill.methods import get_method

        get_method(config.method, **config.method_overrides())


# ----------------------------------------------------------------------------------------------- paths


def existing_input(path: str | Path, option: str, what: str) -> Path:
    """An input that must exist: `--data missing` names the data folder, not a tokenizer looked up inside it."""
    p = Path(path).expanduser()
    if not p.exists():
        raise KidsqlError(f"{option} {path}: no such file or folder; pass {what}")
    return p


def writable_folder(path: str | Path, option: str) -> Path:
    """An output folder that exists or can be created, and can be written: checked by writing a probe file into
    it (or its nearest existing parent), so a read-only file system or a permission problem fails now, not
    after the training or evaluation it would have stored."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise KidsqlError(f"{option} {path}: is a file, not a folder; pass a folder")
    _probe(p, path, option)
    return p


def _probe(p: Path, path: str | Path, option: str) -> None:
    """Write and delete a temp file in `p`, or in its nearest existing parent when `p` does not exist yet."""
    probe_dir = p
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise KidsqlError(f"{option} {path}: cannot be created, {probe_dir} is a file; pass another folder")
    try:
        with tempfile.TemporaryFile(dir=probe_dir):
            pass
    except OSError as err:
        raise KidsqlError(f"{option} {path}: cannot write into {probe_dir} ({err.strerror}); "
                          "choose a writable folder") from None


def writable_file(path: str | Path, option: str, *, force: bool) -> Path:
    """An output file: not a folder, not an existing file unless `force`, in a folder that can be written."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise KidsqlError(f"{option} {path}: is a folder; pass a file name")
    if p.exists() and not force:
        raise KidsqlError(f"{option} {path}: already exists; pass --force to overwrite it or choose another {option}")
    _probe(p.parent, path, option)
    return p


# ----------------------------------------------------------------------------------------- model specs

# A Hugging Face hub id: `name` or `owner/name`, word characters, '-' and '.', at most 96 characters a part.
_HUB_ID = re.compile(r"^(?:[\w.-]{1,96}/)?[\w.-]{1,96}$")


def looks_local(spec: str) -> bool:
    """Whether a model/tokenizer spec can only mean a local path: `./x`, `/abs/x`, `~/x`, `x/y/z`, a name no hub
    id can have, or `dir/x` where `dir` is a folder here (a mistyped local path, not an owner on the hub).
    Such a spec that does not exist is an error at once instead of a ~1 minute wait for the hub offline."""
    if spec.startswith((".", "/", "~")) or "\\" in spec or not _HUB_ID.match(spec) or ".." in spec or "--" in spec:
        return True
    owner = spec.split("/")[0] if "/" in spec else None
    return owner is not None and Path(owner).is_dir()
