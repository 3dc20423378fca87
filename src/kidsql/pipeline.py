"""Steps shared by `kidsql demo` and `kidsql bench`: benchmark, cached teacher, students, predictions, scores.

Why each step looks the way it does:
* `ensure_benchmark` generates the embedded benchmark into a temp folder and renames it into the cache, so a
  killed run never leaves a half-written benchmark that a later run would trust.
* `ensure_teacher` trains the SFT teacher once per (benchmark path, model spec, budget, seed) and reuses it:
  every student of a demo/bench run must see the same teacher, and the teacher is the slowest model to train.
* `predict` is `kidsql.predict.predict_examples` (the CLI's path too): prompts from the options saved with the
  model, so evaluation prompts are byte-identical to training prompts (same token budget, same tokenizer).
* `score` hands the benchmark folder to `kidsql.evaluate.evaluate` as the suite dir, so TS runs on every
  `database/<db_id>/*.sqlite` instance the generator wrote.
* Configs are flat dataclasses loaded like `DistillConfig` (`kidsql.config`): defaults < YAML (`--config`) <
  command line.
* Peak memory per run: `run_distill` resets the high-water mark before each training (`kidsql.memory`), so a
  bench that trains many models in one process still reports each run's own peak.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kidsql.errors import KidsqlError
from kidsql.files import build_folder_once, cache_key, hex_digest

if TYPE_CHECKING:
    from kidsql.data.types import Example
    from kidsql.distill.config import DistillConfig
    from kidsql.distill.trainer import TrainResult
    from kidsql.evaluate import EvalReport

def config_field(text: str, default: Any = None) -> Any:
    """A dataclass field with its --help text (HfArgumentParser reads metadata["help"])."""
    return field(default=default, metadata={"help": text})


# ------------------------------------------------------------------------------------------------ configs


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
                                         "was trained with (the defaults; kidsql.shipped_teacher); false: train it here",
                                         True)
    student_steps: int = config_field("optimiser steps of every student (the same budget for every method)", 150)
    student_warmup_steps: int = config_field("SFT steps on gold before distillation, trained once and shared by "
                                             "every method and seed (a stand-in for a pretrained student; 0: none)",
                                             0)
    batch_size: int = config_field("examples per optimiser step", 16)
    # 3e-4: students start from the teacher's layers, and at a peak of 3e-3 their dev EX fell from ~50 % at step
    # 25 to 12-33 % by step 50-75 before climbing back (learning curves of the first committed bench)
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
        from kidsql.distill.config import DistillConfig, passthrough_fields

        known = {f.name for f in dataclasses.fields(DistillConfig)} | set(passthrough_fields())
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


# ---------------------------------------------------------------------------------------------- progress


class Stages:
    """The "stage 2/6: distil student (kid)" line printed before each step of a long job."""

    def __init__(self, total: int) -> None:
        from rich.console import Console

        self.total, self.done, self.console = total, 0, Console(stderr=True)

    def __call__(self, what: str) -> None:
        self.done += 1
        self.console.rule(f"[bold]stage {self.done}/{self.total}: {what}", align="left")


# ------------------------------------------------------------------------------------------------- budget


@dataclass(frozen=True)
class Budget:
    """What one training run may spend; identical for every method of a comparison."""

    max_steps: int
    batch_size: int
    learning_rate: float
    max_prompt_tokens: int
    max_sql_tokens: int
    train_limit: int | None = None
    max_new_tokens: int = 96
    gen_batch_size: int = 16
    save_steps: int = 500
    num_sample_values: int = 0
    matched_values: bool = True
    warmup_steps: int = 0
    lr_scheduler_type: str = "linear"

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1:
            raise KidsqlError(f"steps ({self.max_steps}) and batch size ({self.batch_size}) must be >= 1; fix the config")


def teacher_budget(cfg: RunConfig) -> Budget:
    return Budget(cfg.teacher_steps, cfg.batch_size, cfg.teacher_learning_rate, cfg.max_prompt_tokens,
                  cfg.max_sql_tokens, cfg.train_limit, cfg.max_new_tokens, cfg.gen_batch_size, save_steps=50,
                  num_sample_values=cfg.num_sample_values, matched_values=cfg.matched_values,
                  warmup_steps=cfg.warmup_steps, lr_scheduler_type=cfg.lr_scheduler_type)


def student_budget(cfg: RunConfig, save_steps: int = 500) -> Budget:
    return Budget(cfg.student_steps, cfg.batch_size, cfg.learning_rate, cfg.max_prompt_tokens, cfg.max_sql_tokens,
                  cfg.train_limit, cfg.max_new_tokens, cfg.gen_batch_size, save_steps,
                  num_sample_values=cfg.num_sample_values, matched_values=cfg.matched_values,
                  warmup_steps=cfg.warmup_steps, lr_scheduler_type=cfg.lr_scheduler_type)


# ---------------------------------------------------------------------------------------------- benchmark


def ensure_benchmark(size: str = "small", seed: int = 0) -> Path:
    """The embedded benchmark in `cache_dir()/benchmarks/<size>-seed<seed>-v<format version>`, generated once,
    atomically (the version in the name: a cache made by an older kidsql is not reused for a changed benchmark)."""
    from kidsql.data.synth import FORMAT_VERSION, generate_benchmark
    from kidsql.paths import cache_dir

    root = cache_dir() / "benchmarks"
    final = root / f"{size}-seed{seed}-v{FORMAT_VERSION}"
    if (final / "dev.json").is_file() and (final / "tokenizer").is_dir():
        return final
    return build_folder_once(final, lambda tmp: generate_benchmark(tmp, seed=seed, size=size), marker="dev.json")


def resolve_benchmark(cfg: RunConfig) -> Path:
    """`cfg.data` when given (checked: it must hold the training split), else the embedded benchmark."""
    if cfg.data:
        from kidsql.data.load import evaluation_splits, load_benchmark

        path = Path(cfg.data)
        if not path.exists():
            raise KidsqlError(f"--data {path}: folder not found; pass a Spider/BIRD folder or drop --data")
        try:
            load_benchmark(path, cfg.train_split, use_evidence=cfg.use_evidence)
        except KidsqlError as err:
            have = ", ".join(evaluation_splits(path)) or "none"
            raise KidsqlError(f"--data {path}: no usable training split {cfg.train_split!r} ({err}); other splits: "
                              f"{have}; pass --train_split NAME") from None
        return path
    return ensure_benchmark(cfg.bench_size, cfg.bench_seed)


def run_tokenizer(bench_dir: Path, student: str, teacher: Path | str | None = None) -> str:
    """The tokenizer of a job's runs. It comes from the models: the student's folder (or hub id); a student built
    from scratch (tiny:...) takes the benchmark's own tokenizer (the embedded benchmark ships one), else the
    teacher's. Teacher and student tokenizers are checked against each other before training (`kidsql.models`)."""
    from kidsql.models import TINY_PREFIX, has_tokenizer, is_hub_id

    if not student.startswith(TINY_PREFIX):
        if has_tokenizer(student) or is_hub_id(student):
            return student
    bench_tokenizer = Path(bench_dir) / "tokenizer"
    if not bench_tokenizer.is_dir() and teacher is not None and (has_tokenizer(teacher)
                                                                  or is_hub_id(str(teacher))):
        return str(teacher)
    return str(bench_tokenizer)  # when absent, loading it is the one-line error that names the folder



# ------------------------------------------------------------------------------------------------ training


def distill_config(bench_dir: Path, method: str, student: str, output_dir: Path, budget: Budget, *,
                   teacher: Path | str | None = None, seed: int = 0, resume: str | None = None,
                   overrides: dict[str, Any] | None = None) -> DistillConfig:
    """The `DistillConfig` of one run of demo/bench: every method gets the same budget; `overrides` (the job's
    `RunConfig.run_overrides()`, a variant's options) win over it, as on the command line."""
    from kidsql.distill.config import load_config

    values: dict[str, Any] = dict(
        method=method, teacher=str(teacher) if teacher else None, student=student, data=str(bench_dir),
        split="train", limit=budget.train_limit,
        output_dir=str(output_dir), learning_rate=budget.learning_rate, max_steps=budget.max_steps,
        per_device_train_batch_size=budget.batch_size, seed=seed, max_prompt_tokens=budget.max_prompt_tokens,
        max_sql_tokens=budget.max_sql_tokens, logging_steps=max(1, budget.max_steps // 10),
        save_steps=budget.save_steps, save_total_limit=1, resume=resume,
        gen_max_new_tokens=budget.max_new_tokens, gen_batch_size=budget.gen_batch_size,
        num_sample_values=budget.num_sample_values, matched_values=budget.matched_values,
        warmup_steps=budget.warmup_steps, lr_scheduler_type=budget.lr_scheduler_type,
    )
    values.update(overrides or {})
    values.setdefault("tokenizer", None)
    values["tokenizer"] = values["tokenizer"] or run_tokenizer(bench_dir, student, teacher)
    return load_config(None, **values)


def teacher_key(bench_dir: Path, spec: str, budget: Budget, seed: int = 0,
                overrides: dict[str, Any] | None = None) -> str:
    """Hash of everything that determines the teacher: benchmark path, model spec, budget, seed, the job's run
    options (training split, LoRA, ...) when there are any, version."""
    import kidsql

    ident = {"bench": str(Path(bench_dir).resolve()), "spec": spec, "budget": dataclasses.asdict(budget),
             "seed": seed, "version": kidsql.__version__}
    if overrides and overrides != {"split": "train", "use_evidence": True}:
        ident["overrides"] = {k: str(v) for k, v in sorted(overrides.items())}
    return cache_key(ident, 16)


def resolve_teacher(bench_dir: Path, cfg: RunConfig) -> Path:
    """The teacher of a demo/bench run: `cfg.teacher` as given when `teacher_steps` is 0 (a model fine-tuned
    elsewhere, as the paper's teachers are), else an SFT teacher trained (once, cached) by `ensure_teacher`."""
    if cfg.teacher_steps == 0:
        from kidsql.models import is_hub_id

        path = Path(cfg.teacher)
        if is_hub_id(cfg.teacher) and not path.exists():
            return path
        if cfg.teacher.startswith("tiny:") or not ((path / "config.json").is_file()
                                                     or (path / "adapter_config.json").is_file()):
            raise KidsqlError(f"--teacher {cfg.teacher}: with --teacher_steps 0 the teacher must be a trained model "
                              "folder (with config.json) or a hub id; pass one or give --teacher_steps N to train it")
        return path
    from kidsql.shipped_teacher import shipped_teacher_for

    return shipped_teacher_for(cfg) or ensure_teacher(bench_dir, cfg.teacher, teacher_budget(cfg), seed=cfg.seed,
                                                      overrides=cfg.run_overrides())


def teacher_origin(cfg: RunConfig) -> str:
    """How the teacher came to be, for reports."""
    from kidsql.shipped_teacher import read_card, setup_of

    if cfg.teacher_steps == 0:
        return "used as given"
    card = read_card() if cfg.shipped_teacher and not cfg.data else None
    shipped = card is not None and card.get("setup") == setup_of(cfg)
    return f"{cfg.teacher_steps} SFT steps" + (", shipped with kidsql" if shipped else "")


def ensure_teacher(bench_dir: Path, spec: str, budget: Budget, *, seed: int = 0,
                   overrides: dict[str, Any] | None = None) -> Path:
    """A teacher fine-tuned with SFT, cached under `cache_dir()/teachers/<key>`; returns its model folder."""
    from kidsql.paths import cache_dir

    run_dir = cache_dir() / "teachers" / teacher_key(bench_dir, spec, budget, seed, overrides)
    model_dir = run_dir / "final"
    done = run_dir / "train_result.json"
    if done.is_file() and (model_dir / "config.json").is_file():
        print(f"teacher: reusing the cached teacher {model_dir}")
        return model_dir
    config = distill_config(bench_dir, "sft", spec, run_dir, budget, seed=seed, resume="auto", overrides=overrides)
    _train(config)
    return model_dir


TEACHER_LAYERS = "teacher-layers:"


def resolve_student(spec: str, teacher_dir: Path) -> str:
    """The student spec every method starts from. `teacher-layers:N` is N evenly spaced layers of the trained
    teacher (`kidsql.models.keep_layers`, DistilBERT's initialisation), written once into the kidsql cache
    (keyed by the teacher folder and its weights' mtime) so every method and seed starts from the same weights;
    anything else (tiny:<size>, a folder, a hub id) is returned unchanged."""
    if not spec.startswith(TEACHER_LAYERS):
        return spec
    from kidsql.models import keep_layers
    from kidsql.paths import cache_dir

    try:
        n = int(spec[len(TEACHER_LAYERS):])
    except ValueError:
        raise KidsqlError(f"--student {spec}: write teacher-layers:N with N a number of layers, e.g. teacher-layers:2") from None
    teacher_dir = Path(teacher_dir).resolve()
    stamp = max((p.stat().st_mtime_ns for p in teacher_dir.glob("*.safetensors")), default=0)
    key = hex_digest(f"{teacher_dir}:{stamp}:{n}", 16)
    out = cache_dir() / "student_inits" / key
    if not (out / "config.json").is_file():
        build_folder_once(out, lambda tmp: keep_layers(teacher_dir, tmp, n), marker="config.json")
    return str(out)


def train_student(bench_dir: Path, method: str, student: str, teacher_dir: Path | str | None, output_dir: Path,
                  budget: Budget, *, seed: int = 0, overrides: dict[str, Any] | None = None,
                  callbacks: list[Any] | None = None, resume: str | None = None) -> TrainResult:
    """Distil one student; `resume="auto"` continues an interrupted run from its last checkpoint."""
    config = distill_config(bench_dir, method, student, output_dir, budget, teacher=teacher_dir, seed=seed,
                            resume=resume, overrides=overrides)
    return _train(config, callbacks=callbacks)


def _train(config: DistillConfig, callbacks: list[Any] | None = None) -> TrainResult:
    from kidsql.distill.trainer import run_distill

    return run_distill(config, callbacks=callbacks)


# ----------------------------------------------------------------------------------- prompts, predict, score


def split_examples(bench_dir: Path, split: str, limit: int | None = None, *,
                   use_evidence: bool = True) -> tuple[list[Example], Any]:
    """The gold examples of a split (first `limit`) and the loaded `Benchmark`."""
    from kidsql.data.load import load_benchmark

    bench = load_benchmark(Path(bench_dir), split, use_evidence=use_evidence)
    return (bench.examples[:limit] if limit else bench.examples), bench


def predict(model_dir: Path, bench_dir: Path, split: str, limit: int | None = None, *, max_new_tokens: int = 96,
            batch_size: int = 16, model: Any = None, tokenizer: Any = None, use_evidence: bool = True,
            guided: Any = None) -> list[str]:
    """Greedy (or execution-guided: `kidsql.guided`) SQL for the first `limit` examples of `split`, through
    `kidsql.predict` (the CLI's own path); pass `model`/`tokenizer` to predict several splits with one model."""
    from kidsql.predict import predict_examples

    examples, bench = split_examples(bench_dir, split, limit, use_evidence=use_evidence)
    return predict_examples(model_dir, bench, examples, max_new_tokens=max_new_tokens, batch_size=batch_size,
                            model=model, tokenizer=tokenizer, guided=guided)


def score(bench_dir: Path, split: str, preds: list[str], *, limit: int | None = None, workers: int | None = None,
          metrics: tuple[str, ...] = ("ex", "ts", "em"), show_progress: bool = True,
          use_evidence: bool = True) -> EvalReport:
    """EX/TS/EM of `preds` on the first `limit` examples of `split`; TS over `<db_dir>/<db_id>/*.sqlite` (the
    split's database folder: `database/` in Spider, `<split>_databases/` in BIRD, compared with BIRD's set
    semantics there)."""
    from kidsql.data.load import detect_kind, split_folder
    from kidsql.evaluate import evaluate

    examples, bench = split_examples(bench_dir, split, limit, use_evidence=use_evidence)
    semantics = "bird" if detect_kind(split_folder(Path(bench_dir), split), split) == "bird" else "spider"
    return evaluate(examples, preds, bench.db_dir, suite_dir=bench.db_dir, metrics=metrics, semantics=semantics,
                    schemas=bench.schemas, workers=workers, show_progress=show_progress)


def ex_per_example(report: EvalReport) -> list[bool | None]:
    """Each example's EX verdict in order (None: its gold query failed): what paired statistics compare."""
    return [None if v.verdict == "gold_error" or v.ex is None else bool(v.ex) for v in report.verdicts]


def summary_metrics(report: EvalReport) -> dict[str, float | int | None]:
    """{"ex", "ts", "em", "scored"} of the "all" row: what demo/bench tables and JSON store."""
    row = report.summary()["all"]
    return {"ex": row["ex"], "ts": row["ts"], "em": row["em"], "scored": row["scored"]}


# --------------------------------------------------------------------------------------- learning curves


def dev_curve_callback(bench_dir: Path, tokenizer: Any, path: Path, *, every: int, size: int, split: str = "dev",
                       max_prompt_tokens: int = 1024, max_new_tokens: int = 96, batch_size: int = 16,
                       num_sample_values: int = 0, matched_values: bool = True, use_evidence: bool = True) -> Any:
    """A TrainerCallback (`kidsql.distill.exec_eval.ExecutionEval`): every `every` steps, greedy SQL for the first
    `size` examples of `split`, scored by execution (EX), appended as {"step", "ex"} to `path` (JSON lines)."""
    from kidsql.distill.exec_eval import ExecutionEval
    from kidsql.split_prompts import build_split_prompts, prompt_options

    options = prompt_options(tokenizer, max_prompt_tokens=max_prompt_tokens, num_sample_values=num_sample_values,
                             matched_values=matched_values)
    prompts, _ = build_split_prompts(bench_dir, split, tokenizer, options, limit=size, use_evidence=use_evidence)
    examples, bench = split_examples(bench_dir, split, size, use_evidence=use_evidence)
    return ExecutionEval(prompts, examples, bench, tokenizer, every=every, path=path, max_new_tokens=max_new_tokens,
                         batch_size=batch_size)


def read_curve(path: Path) -> list[list[float]]:
    """[[step, ex], ...] from a DevCurve file, one point per step (the last one wins after a resume)."""
    if not Path(path).is_file():
        return []
    points: dict[int, float] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            points[int(rec["step"])] = float(rec["ex"])
    return [[float(s), points[s]] for s in sorted(points)]


def environment() -> dict[str, Any]:
    """What a report records about where it ran."""
    import datetime
    import platform
    import sys

    import torch

    import kidsql

    return {"command": " ".join(["kidsql", *sys.argv[1:]]) if sys.argv and "kidsql" in sys.argv[0] else " ".join(sys.argv),
            "argv": list(sys.argv), "kidsql_version": kidsql.__version__, "torch_version": torch.__version__,
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
