"""The shared student warm-up: SFT on gold before distillation, one checkpoint for every method and seed.

Why: the paper's students are pretrained language models that already write SQL-like text, so their on-policy
samples (GKD, ImitKD, f-distill) and KID's rewrites are realistic mistakes; a student cut from one teacher layer
writes mostly malformed SQL at first. f-distill's own scripts start TVD from a student first trained with MLE and
word-level KD. `--student_warmup_steps N` is the CPU stand-in: N SFT steps on gold from the student's start,
trained once (seed `seed`, cached under `cache_dir()/student_warmups/<key>`) and handed to every method and seed
of a demo/bench, so that no method gets a different start.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kidsql.errors import KidsqlError
from kidsql.files import cache_key
from kidsql.experiments.config import Budget
from kidsql.experiments.steps import distill_config


def warmup_key(bench_dir: Path, student: str, budget: Budget, seed: int) -> str:
    """Hash of what determines the warm-up: the benchmark, the student's start (its files), budget, seed."""
    import kidsql
    from kidsql.distill.sequences import model_fingerprint

    ident = {"bench": str(Path(bench_dir).resolve()), "student": model_fingerprint(student),
             "budget": budget.options(), "seed": seed, "version": kidsql.__version__}
    return cache_key(ident, 16)


def ensure_student_warmup(bench_dir: Path, student: str, budget: Budget, *, seed: int = 0) -> str:
    """The student after `budget.max_steps` SFT steps on gold from `student` (a spec or folder), trained once and
    cached; returns its model folder. An interrupted warm-up resumes from its last checkpoint."""
    from kidsql.distill.trainer import run_distill
    from kidsql.paths import cache_dir

    run_dir = cache_dir() / "student_warmups" / warmup_key(bench_dir, student, budget, seed)
    model_dir = run_dir / "final"
    if (run_dir / "train_result.json").is_file() and (model_dir / "config.json").is_file():
        print(f"student warm-up: reusing {model_dir}")
        return str(model_dir)
    run_distill(distill_config(bench_dir, "sft", student, run_dir, budget, seed=seed, resume="auto"))
    return str(model_dir)


def warm_student(bench_dir: Path, student: str, budget: Budget, steps: int, *, seed: int = 0) -> str:
    """`student` itself when `steps` is 0, else its shared warm-up (`ensure_student_warmup`) of `steps` SFT steps
    at the students' learning rate and schedule (`budget`)."""
    if steps < 0:
        raise KidsqlError(f"--student_warmup_steps {steps}: give 0 (no warm-up) or a number of SFT steps")
    if steps == 0:
        return student
    return ensure_student_warmup(bench_dir, student, dataclasses.replace(budget, max_steps=steps), seed=seed)
