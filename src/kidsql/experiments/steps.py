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
* Peak memory per run: `run_distill` resets the high-water mark before each training (`kidsql.memory`), so a
  bench that trains many models in one process still reports each run's own peak.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kidsql.errors import KidsqlError
from kidsql.experiments.config import Budget, RunConfig, teacher_budget
from kidsql.files import build_folder_once, cache_key, hex_digest

if TYPE_CHECKING:
    from kidsql.data.types import Example
    from kidsql.distill.config import DistillConfig
    from kidsql.distill.trainer import TrainResult
    from kidsql.evaluate import EvalReport


# ---------------------------------------------------------------------------------------------- progress


class Stages:
    """The "stage 2/6: distil student (kid)" line printed before each step of a long job."""

    def __init__(self, total: int) -> None:
        from rich.console import Console

        self.total, self.done, self.console = total, 0, Console(stderr=True)

    def __call__(self, what: str) -> None:
        self.done += 1
        self.console.rule(f"[bold]stage {self.done}/{self.total}: {what}", align="left")


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
        split="train", output_dir=str(output_dir), seed=seed, resume_from_checkpoint=resume,
        logging_steps=max(1, budget.max_steps // 10), save_total_limit=1, **budget.options())
    values.update(overrides or {})
    values.setdefault("tokenizer", None)
    values["tokenizer"] = values["tokenizer"] or run_tokenizer(bench_dir, student, teacher)
    return load_config(None, **values)


def teacher_key(bench_dir: Path, spec: str, budget: Budget, seed: int = 0,
                overrides: dict[str, Any] | None = None) -> str:
    """Hash of everything that determines the teacher: benchmark path, model spec, budget, seed, the job's run
    options (training split, LoRA, ...) when there are any, version."""
    import kidsql

    ident = {"bench": str(Path(bench_dir).resolve()), "spec": spec, "budget": budget.options(),
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
    from kidsql.experiments.shipped_teacher import shipped_teacher_for

    return shipped_teacher_for(cfg) or ensure_teacher(bench_dir, cfg.teacher, teacher_budget(cfg), seed=cfg.seed,
                                                      overrides=cfg.run_overrides())


def teacher_origin(cfg: RunConfig) -> str:
    """How the teacher came to be, for reports."""
    from kidsql.experiments.shipped_teacher import read_card, setup_of

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
