"""`DistillConfig`: every knob of a training run, as one flat dataclass, from YAML and/or the command line.

Flat on purpose: `transformers.HfArgumentParser` turns each field into a `--field` option (nested dataclasses are
not supported there), and a flat YAML file is the easiest to read and diff. Prefixes group the fields:
`kid_*` (KID), `gen_*` (decoding of generated sequences), `lora_*`. Method fields left at None keep the
method's defaults (see `kidsql.distill.methods`).

Precedence: dataclass defaults < the YAML file (`--config`) < options given on the command line.

Every other `transformers.TrainingArguments` field passes through unmapped, as TRL's configs (which extend
`TrainingArguments`) allow: `--gradient_checkpointing`, `--report_to tensorboard`, `--optim adafactor`, or the
same keys in the YAML file, land in `trainer_options` and go to `TrainingArguments` as they are. The fields below
that share a name with a `TrainingArguments` field (learning_rate, seed, ...) are passed on by the trainer;
`bf16` adds "auto".
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kidsql.config import (add_dataclass_arguments, add_fields_arguments, build_dataclass, config_field, given_fields,
                           read_options)


@dataclass
class DistillConfig:
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
    bf16: str = config_field("auto (bf16 autocast on a CUDA device or CPU with native bf16) | true | false", "auto")
    shuffle: bool = config_field("shuffle training examples (off: sequential order, for reproducibility tests)", True)
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
    resume: str | None = config_field("resume: 'auto' (latest checkpoint in output_dir; a finished run is reused) or a "
                            "checkpoint folder; without it a folder holding a run is refused (see --force)")
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
    # every other TrainingArguments field (not a command-line option of its own: the pass-through fills it)
    trainer_options: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "other transformers.TrainingArguments fields, passed on as they are"})

    def __post_init__(self) -> None:
        from kidsql.validate import check_options

        check_options(self)

    def method_overrides(self) -> dict[str, Any]:
        names = ["divergence", "mle_weight", "student_fraction", "beta", "skew_alpha", "temperature"]
        names += [f.name for f in dataclasses.fields(self) if f.name.startswith("kid_")]
        return {n: getattr(self, n) for n in names}


# TrainingArguments fields the trainer sets itself from DistillConfig fields or fixes for its batches
_FIXED_TRAINING_ARGS = frozenset({"output_dir", "remove_unused_columns", "train_sampling_strategy", "use_cpu",
                                  "data_seed"})


def passthrough_fields() -> dict[str, Any]:
    """{name: dataclasses.Field} of the TrainingArguments fields that are not DistillConfig fields."""
    from transformers import TrainingArguments

    own = {f.name for f in dataclasses.fields(DistillConfig)}
    return {f.name: f for f in dataclasses.fields(TrainingArguments)
            if f.init and f.name not in own and f.name not in _FIXED_TRAINING_ARGS and not f.name.startswith("_")}


def load_config(path: str | Path | None = None, **overrides: Any) -> DistillConfig:
    """Defaults < YAML file at `path` < `overrides`; TrainingArguments fields go to `trainer_options`; unknown
    keys are a one-line error naming the file."""
    values = read_options(path)
    values.update(overrides)
    passthrough = passthrough_fields()
    extra = {k: values.pop(k) for k in list(values) if k in passthrough}
    if extra:
        values["trainer_options"] = {**(values.get("trainer_options") or {}), **extra}
    return build_dataclass(DistillConfig, values, path)


def add_config_arguments(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """Add `--config`, one option per DistillConfig field, and one per other TrainingArguments field (the
    pass-through, listed last in --help) to `parser` (see `kidsql.config`)."""
    add_dataclass_arguments(parser, DistillConfig, skip=skip + ("trainer_options",))
    group = parser.add_argument_group("other transformers.TrainingArguments fields (passed on as they are)")
    add_fields_arguments(group, passthrough_fields().values())


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The DistillConfig fields (and TrainingArguments fields) present in a namespace parsed by a parser from
    `add_config_arguments`."""
    out = given_fields(args, DistillConfig)
    out.update({k: getattr(args, k) for k in passthrough_fields() if hasattr(args, k)})
    return out
