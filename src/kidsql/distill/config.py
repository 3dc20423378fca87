"""`DistillConfig`: every knob of a training run, from YAML and/or the command line. It extends
`transformers.TrainingArguments`, as TRL's configs do: the trainer takes it as its `args`, and every Trainer option
(`--gradient_checkpointing`, `--report_to tensorboard`, `--optim adafactor`, `--resume_from_checkpoint`, ...) is a
field of it.

Flat on purpose: `transformers.HfArgumentParser` turns each field into a `--field` option (nested dataclasses are
not supported there), and a flat YAML file is the easiest to read and diff. Prefixes group kidsql's own fields:
`kid_*` (KID), `gen_*` (decoding of generated sequences), `lora_*`. Method fields left at None keep the
method's defaults (see `kidsql.distill.methods`). The fields redeclared below keep their TrainingArguments
meaning with kidsql's defaults; `bf16` unset means "auto" (`kidsql.precision`).

Precedence: dataclass defaults < the YAML file (`--config`) < options given on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from kidsql.config import (add_dataclass_arguments, add_fields_arguments, build_dataclass, config_field, given_fields,
                           read_options)
from kidsql.errors import KidsqlError


@dataclass
class DistillConfig(TrainingArguments):
    # what
    method: str = config_field("kid: sft, seqkd, fkd, rkd, fdistill, imitkd, gkd, gkd-fkl, gkd-rkl, gkd-jsd, kid", "kid")
    teacher: str | None = config_field("teacher model folder or hub id (not needed for sft)")
    student: str | None = config_field("student: a folder, a hub id, or tiny:<1m|3m|4m|8m|cfg.yaml> built from scratch")
    tokenizer: str | None = config_field("tokenizer folder; default: the student folder, else <data>/tokenizer")
    data: str | None = config_field("benchmark folder (Spider/BIRD layout or JSONL)")
    split: str = config_field("training split of the benchmark", "train")
    data_kind: str = config_field("auto | spider | bird | jsonl", "auto")
    use_evidence: bool = config_field("BIRD: put the evidence hint in the prompt", True)
    limit: int | None = config_field("train on the first N examples only")
    output_dir: str = config_field("where checkpoints, the final model and train_result.json go", "runs/distill")
    # optimisation
    learning_rate: float = config_field("peak learning rate (paper: 2e-4 with LoRA)", 2e-4)
    num_train_epochs: float = config_field("epochs (paper: 8)", 8.0)
    max_steps: int = config_field("stop after this many optimiser steps (overrides epochs when > 0)", -1)
    per_device_train_batch_size: int = config_field("examples per device per micro-batch (global = this x devices x accum)", 16)
    gradient_accumulation_steps: int = config_field("micro-batches per optimiser step", 1)
    lr_scheduler_type: str = config_field("transformers scheduler name", "linear")
    warmup_steps: float = config_field("linear warm-up: steps, or a fraction of all steps when < 1", 0.0)
    weight_decay: float = config_field("AdamW weight decay", 0.0)
    max_grad_norm: float = config_field("gradient clipping", 1.0)
    seed: int = config_field("seed of data order, initialisation and KID's masking", 0)
    bf16: bool | None = config_field("bf16 autocast; unset (or auto): on a CUDA device or CPU with native bf16 "
                                     "(kidsql.precision)")
    share_prompt_prefix: bool = config_field("batch questions in blocks of 4 per database and run each block's schema prefix "
                                   "once (same logits; faster on long shared schemas, but less mixed batches can "
                                   "slow learning; single process only)", False)
    reuse_prompt_kv: bool = config_field("KID: run the student's prompt once and reuse its keys/values in the rewrite pass "
                                "and the training forward (same logits, cheaper; single process only)", True)
    max_prompt_tokens: int = config_field("prompt token budget (paper: 1024-2048)", 1024)
    max_sql_tokens: int = config_field("SQL token budget (paper: 128-256)", 256)
    num_sample_values: int = config_field("sample values per column in the prompt (0: none, far shorter prompts)", 2)
    matched_values: bool = config_field("list the database values found in the question in the prompt", True)
    chunk_size: int | None = config_field("positions per chunk in the divergence (None: automatic)")
    teacher_cache_topk: int = config_field("teacher-logit cache: keep the teacher's top-k log-probs (+ the exact rest mass) at every "
                                 "SQL position of the gold data, computed once, stored on disk and reused by every run "
                                 "on the same teacher, data and prompts (FKD, RKD, gold batches of ImitKD/GKD; other "
                                 "methods ignore it); 0: off, a live teacher forward every step", 0)
    # checkpoints and logs
    logging_steps: int = config_field("log loss / tokens/s / step time every N steps", 10)
    save_steps: int = config_field("checkpoint every N steps", 500)
    save_total_limit: int | None = config_field("keep at most N checkpoints", 2)
    resume_from_checkpoint: str | None = field(default=None, metadata={
        "aliases": ["--resume"],
        "help": "'auto' (the latest checkpoint in output_dir; a finished run is reused) or a checkpoint folder; without "
                "it a folder holding a run is refused (see --force)"})
    save_final: bool = config_field("save the trained model to output_dir/final (--no_save_final: no checkpoint is written "
                          "at all)", True)
    cache_dir: str | None = config_field("cache of teacher-generated sequences (default: kidsql cache dir)")
    # LoRA
    lora: bool = config_field("train LoRA adapters instead of all weights", False)
    lora_r: int = config_field("LoRA rank (paper: 64)", 64)
    lora_alpha: int = config_field("LoRA alpha (paper: 32)", 32)
    lora_dropout: float = config_field("LoRA dropout", 0.05)
    # models
    student_dtype: str | None = config_field("dtype of the student: auto (bf16 on a CUDA device that has it, else fp32) | "
                                   "float32 | bfloat16 | float16; default: auto with LoRA, float32 without")
    teacher_dtype: str = config_field("dtype of the frozen teacher: auto | float32 | bfloat16 | float16", "auto")
    attn_implementation: str | None = config_field("attention kernel of both models (transformers: eager, sdpa, "
                                         "flash_attention_2); default: the model's own choice")
    # evaluation by execution during training
    exec_eval_split: str | None = config_field("every exec_eval_steps steps, greedy SQL for the first exec_eval_limit "
                                     "examples of this split, scored by execution; logged as exec_ex")
    exec_eval_steps: int = config_field("steps between executions of exec_eval_split (0: never)", 0)
    exec_eval_limit: int = config_field("examples of exec_eval_split evaluated each time", 64)
    # method overrides (None: the method's default)
    divergence: str | None = config_field("override the divergence: fkl, rkl, jsd, tvd, skl, srkl, none")
    mle_weight: float | None = config_field("override the weight of the MLE term")
    student_fraction: float | None = config_field("override GKD's lambda: fraction of on-policy batches")
    beta: float | None = config_field("JSD beta")
    skew_alpha: float | None = config_field("skew of skl/srkl")
    temperature: float | None = config_field("softmax temperature of the divergence")
    kid_alpha: float | None = config_field("KID: fraction of SQL tokens rewritten (paper: 0.2)")
    kid_strategy: str | None = config_field("KID: random | uniform | hard | easy")
    kid_rewrite: str | None = config_field("KID: argmax | sample | none")
    kid_mask_token: str | None = config_field("KID: bos | eos | unk | pad | a token string")
    kid_kl_positions: str | None = config_field("KID: all | rewritten")
    kid_mle_on: str | None = config_field("KID: clean (MLE on the clean gold SQL, the paper's reading; default) | imperfect (MLE on the rewritten "
                                  "sequence's forward: cheaper, weaker on the CPU bench)")
    # generation of sequences
    gen_max_new_tokens: int = config_field("max new tokens of generated sequences", 128)
    gen_temperature: float | None = config_field("on-policy sampling temperature (None: the method's reference value, "
                                       "kidsql.distill.methods)")
    gen_top_k: int | None = config_field("on-policy top-k sampling, 0: off (None: the method's reference value)")
    gen_top_p: float | None = config_field("on-policy nucleus sampling, 1: off (None: the method's reference value)")
    gen_batch_size: int = config_field("batch size of the teacher's one-off generation", 16)
    force: bool = config_field("replace a finished or interrupted run in output_dir (its checkpoints, final/ and "
                     "train_result.json) and train from scratch", False)
    # TrainingArguments fields whose default the trainer's batches need
    remove_unused_columns: bool = config_field("keep every column of the batches (the trainer reads them all)", False)
    ddp_find_unused_parameters: bool | None = config_field("DDP: look for parameters without gradient (none here)",
                                                           False)

    def __post_init__(self) -> None:
        """kidsql's checks and defaults (one-line errors), then TrainingArguments' own (`bf16` unset: "auto";
        `--no_save_final` saves nothing, no checkpoints either; gradient checkpointing of the non-reentrant kind,
        which works with frozen embeddings (LoRA) without making the inputs require gradients)."""
        import torch

        from kidsql.precision import auto_bf16_autocast
        from kidsql.validate import check_options

        self.bf16 = _bf16_option(self.bf16)
        check_options(self)
        if self.bf16 is None:
            self.bf16 = auto_bf16_autocast()
        checkpointing = self.activation_checkpointing or self.gradient_checkpointing  # the second: the older name
        if checkpointing and not (self.activation_checkpointing_kwargs or self.gradient_checkpointing_kwargs):
            self.activation_checkpointing_kwargs = {"use_reentrant": False}
        if not self.save_final:
            self.save_strategy = "no"
        if self.data_seed is None:
            self.data_seed = self.seed
        if not torch.cuda.is_available():
            self.use_cpu = True  # without it accelerate never starts a multi-process CPU (gloo) run
        _check_report_to(self.report_to)
        try:
            super().__post_init__()
        except (TypeError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise KidsqlError(f"invalid training options ({first}); fix the option named there") from err

    def method_overrides(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in METHOD_OVERRIDES}


# the fields that override a method's defaults (None: keep the method's own)
METHOD_OVERRIDES = ("divergence", "mle_weight", "student_fraction", "beta", "skew_alpha", "temperature",
                    *(n for n in DistillConfig.__annotations__ if n.startswith("kid_")))


def _bf16_option(value: Any) -> bool | None:
    """`bf16` as given (True, False, None, or "auto"/"true"/"false" as YAML and the command line write them) ->
    True/False/None (auto)."""
    if value is None or isinstance(value, bool):
        return value
    named = {"auto": None, "true": True, "false": False}
    if str(value).lower() not in named:
        raise KidsqlError(f"--bf16 {value!r}: must be auto, true or false; fix the option (or the --config file)")
    return named[str(value).lower()]


# report_to backends kidsql documents, and the package each needs (installed with `pip install kidsql[<extra>]`)
_REPORT_PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", None),
                    "mlflow": ("mlflow", None)}


def _check_report_to(report_to: Any) -> None:
    """A one-line error naming the install command when a report_to backend's package is missing."""
    import importlib.util

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    for name in names:
        package, extra = _REPORT_PACKAGES.get(str(name), (None, None))
        if package and importlib.util.find_spec(package) is None:
            how = f"pip install 'kidsql[{extra}]'" if extra else f"pip install {package}"
            raise KidsqlError(f"report_to {name}: the {package} package is not installed; {how}, or drop report_to")


def own_fields() -> list[dataclasses.Field]:
    """kidsql's fields (and the TrainingArguments fields it redeclares), in the order of the class body."""
    by_name = {f.name: f for f in dataclasses.fields(DistillConfig)}
    return [by_name[name] for name in DistillConfig.__annotations__ if name in by_name]


def load_config(path: str | Path | None = None, **overrides: Any) -> DistillConfig:
    """Defaults < YAML file at `path` < `overrides`; unknown keys are a one-line error naming the file."""
    values = read_options(path)
    values.update(overrides)
    return build_dataclass(DistillConfig, values, path)


def add_config_arguments(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """Add `--config` and one option per DistillConfig field to `parser` (see `kidsql.config`): kidsql's first,
    then the other TrainingArguments fields, in a group of their own at the end of --help."""
    add_dataclass_arguments(parser, DistillConfig, skip=skip, fields=own_fields())
    for action in parser._actions:
        if action.dest == "bf16":  # --bf16 [auto|true|false]; the bare flag means true, as for other flags
            action.type, action.nargs, action.const = _bf16_option, "?", True
    names = {f.name for f in own_fields()} | set(skip)
    group = parser.add_argument_group("other transformers.TrainingArguments fields")
    add_fields_arguments(group, [f for f in dataclasses.fields(DistillConfig)
                                 if f.init and f.name not in names and not f.name.startswith("_")], DistillConfig)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The DistillConfig fields present in a namespace parsed by a parser from `add_config_arguments`."""
    return given_fields(args, DistillConfig)
