"""The settings of `kidsql demo` and `kidsql bench`: `RunConfig` (the fields both share), the training budget
every method of a comparison gets, and the method list.

Configs are flat dataclasses loaded like `DistillConfig` (`kidsql.config`): defaults < YAML (`--config`) <
command line. `RunConfig`'s defaults are the one place where the CPU sizes and steps are tuned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from kidsql.config import config_field
from kidsql.errors import KidsqlError

@dataclass
class RunConfig:
    """Fields shared by demo and bench. The defaults are THE place where the CPU sizes/steps are tuned."""

    out: str = config_field("output folder of report.md / report.json / plots", "runs/demo")
    data: str | None = config_field("a benchmark folder as it ships (Spider: train_spider.json + train_others.json, "
                                    "dev.json, tables.json, database/; BIRD: train/, dev/) instead of the embedded one")
    train_split: str = config_field("split the teacher and students train on (Spider as shipped: train = "
                                    "train_spider + train_others)", "train")
    use_evidence: bool = config_field("BIRD: put the evidence hint in prompts (--no_use_evidence: BIRD without "
                                      "knowledge)", True)
    bench_size: str = config_field("embedded benchmark preset: cpu (in-domain, learnable on a CPU) | cpu-medium "
                                   "(cpu plus medium shapes: longer SQL) | full (Spider-like, cross-db) | small (tests)",
                                   "cpu")
    bench_seed: int = config_field("seed of the embedded benchmark", 0)
    teacher: str = config_field("teacher spec: tiny:<1m|3m|4m|8m|cfg.yaml>, a folder or hub id", "tiny:3m")
    student: str = config_field("student spec: teacher-layers:N (N layers of the trained teacher, DistilBERT-style), "
                                 "tiny:<1m|3m|4m|8m|cfg.yaml> (random), a folder or hub id", "teacher-layers:1")
    teacher_steps: int = config_field("optimiser steps of the teacher's SFT (0: use --teacher, a trained folder, as is)",
                                      1000)
    shipped_teacher: bool = config_field("use the teacher shipped with kidsql when the teacher setup is the one it "
                                         "was trained with (the defaults; kidsql.experiments.shipped_teacher); false: train it here",
                                         True)
    student_steps: int = config_field("optimiser steps of every student (the same budget for every method)", 150)
    student_warmup_steps: int = config_field("SFT steps on gold before distillation, trained once and shared by "
                                             "every method and seed (a stand-in for a pretrained student; 0: none)",
                                             0)
    batch_size: int = config_field("examples per optimiser step", 16)
    # 3e-4, not the teacher's 3e-3: students start from the teacher's layers, and a peak of 3e-3 throws their dev
    # EX far below its start before it climbs back (the learning curves in docs/results/bench-cpu/)
    learning_rate: float = config_field("students' peak learning rate", 3e-4)
    teacher_learning_rate: float = config_field("teacher's peak learning rate", 3e-3)
    warmup_steps: int = config_field("linear warm-up steps of every run", 50)
    lr_scheduler_type: str = config_field("learning-rate schedule of every run (transformers name)", "cosine")
    max_prompt_tokens: int = config_field("prompt token budget (training and evaluation)", 160)
    num_sample_values: int = config_field("sample values per column in prompts (0: none, far shorter prompts)", 0)
    matched_values: bool = config_field("list database values found in the question in prompts", True)
    max_sql_tokens: int = config_field("SQL token budget of training sequences", 112)
    train_limit: int | None = config_field("train on the first N training examples only")
    eval_limit: int | None = config_field("evaluate on the first N examples of each split only (None: all)", 200)
    max_new_tokens: int = config_field("max new tokens when generating SQL", 96)
    gen_batch_size: int = config_field("prompts per generation batch", 32)
    seed: int = config_field("seed of the students (bench: the first seed)", 0)
    eval_workers: int | None = config_field("evaluation processes (default: all cores)")
    lora: bool = config_field("train LoRA adapters of every student (and a trained teacher) instead of all weights",
                              False)
    lora_r: int = config_field("LoRA rank (paper: 64; 8 for CodeGen)", 64)
    lora_alpha: int = config_field("LoRA alpha (paper: 32)", 32)
    lora_dropout: float = config_field("LoRA dropout", 0.05)
    train_options: str | None = config_field("options of every training run: a comma list (or, in YAML, a mapping) of "
                                      "field=value, any `kidsql distill` option or transformers TrainingArguments "
                                      "field, e.g. gradient_checkpointing=true,attn_implementation=sdpa,"
                                      "report_to=tensorboard,student_dtype=bfloat16")

    def run_overrides(self) -> dict[str, Any]:
        """The DistillConfig fields (and TrainingArguments fields) every training run of this job gets."""
        out: dict[str, Any] = {"split": self.train_split, "use_evidence": self.use_evidence}
        if self.lora:
            out.update(lora=True, lora_r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout)
        out.update(parse_train_options(self.train_options))
        return out

    def check(self) -> None:
        """Refuse, before any training, `--train_options` fields that neither kidsql nor TrainingArguments knows."""
        from kidsql.distill.config import DistillConfig

        known = {f.name for f in dataclasses.fields(DistillConfig) if f.init}
        unknown = sorted(set(parse_train_options(self.train_options)) - known)
        if unknown:
            raise KidsqlError(f"--train_options: unknown field(s) {', '.join(unknown)}; use `kidsql distill --help` "
                              "fields or transformers.TrainingArguments fields")

    def __post_init__(self) -> None:
        from kidsql.validate import check_options

        check_options(self)


def parse_train_options(value: Any) -> dict[str, Any]:
    """`a=1,b=x` (values read as YAML scalars: true, 3, 2e-4, sdpa) or a mapping -> {field: value}."""
    import yaml

    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    out = {}
    for item in (x.strip() for x in str(value).split(",")):
        if not item:
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise KidsqlError(f"--train_options {value!r}: expected field=value items, e.g. gradient_checkpointing=true")
        out[key.strip()] = yaml.safe_load(raw.strip()) if raw.strip() else None
    return out


def parse_methods(text: str) -> list[str]:
    """Method names from a comma list, checked against `kidsql.distill.methods` before any training."""
    from kidsql.distill.methods import get_method

    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    if not names:
        raise KidsqlError("--methods is empty; give a comma list such as sft,rkd,kid")
    for name in names:
        get_method(name)
    return list(dict.fromkeys(names))


# ------------------------------------------------------------------------------------------------- budget


@dataclass(frozen=True)
class Budget:
    """What one training run may spend; identical for every method of a comparison. The fields are
    `DistillConfig` fields of the same names (`options()`), so a run's config takes them as they are."""

    max_steps: int
    per_device_train_batch_size: int
    learning_rate: float
    max_prompt_tokens: int
    max_sql_tokens: int
    limit: int | None = None
    gen_max_new_tokens: int = 96
    gen_batch_size: int = 16
    save_steps: int = 500
    num_sample_values: int = 0
    matched_values: bool = True
    warmup_steps: int = 0
    lr_scheduler_type: str = "linear"

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.per_device_train_batch_size < 1:
            raise KidsqlError(f"steps ({self.max_steps}) and batch size ({self.per_device_train_batch_size}) must be "
                              ">= 1; fix the config")

    def options(self) -> dict[str, Any]:
        """The DistillConfig fields this budget sets."""
        return dataclasses.asdict(self)


def teacher_budget(cfg: RunConfig) -> Budget:
    return _budget(cfg, cfg.teacher_steps, cfg.teacher_learning_rate, save_steps=50)


def student_budget(cfg: RunConfig, save_steps: int = 500) -> Budget:
    return _budget(cfg, cfg.student_steps, cfg.learning_rate, save_steps=save_steps)


def _budget(cfg: RunConfig, steps: int, learning_rate: float, save_steps: int) -> Budget:
    return Budget(steps, cfg.batch_size, learning_rate, cfg.max_prompt_tokens, cfg.max_sql_tokens, cfg.train_limit,
                  cfg.max_new_tokens, cfg.gen_batch_size, save_steps, num_sample_values=cfg.num_sample_values,
                  matched_values=cfg.matched_values, warmup_steps=cfg.warmup_steps,
                  lr_scheduler_type=cfg.lr_scheduler_type)
