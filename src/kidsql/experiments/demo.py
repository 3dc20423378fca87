"""The demo: the main job on the embedded benchmark, on a CPU, in minutes (`kidsql demo`).

Teacher (the one shipped with kidsql for the default setup, else SFT, cached and reused across runs) -> one
shared student warm-up (SFT) -> students distilled with SFT, RKD and KID at the same budget -> every model scored
on dev by execution (EX, TS on the test-suite instances, EM) -> a table, a conclusion of paired differences with
their bootstrap intervals, and `report.md` + `report.json` in `--out`.

Overwrite policy: an `--out` folder that already holds a report is refused unless `--force` is given; with
`--force` the demo's student runs there are deleted and trained again (the cached teacher is still reused).
The sizes/steps are the defaults of `kidsql.experiments.config.RunConfig` (one place to tune them), except the
students' warm-up and steps (DemoConfig); every field can be set in a YAML file (`--config`) and overridden on the
command line.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kidsql.config import config_field
from kidsql.errors import KidsqlError
from kidsql.experiments import steps
from kidsql.experiments.config import RunConfig, parse_methods, student_budget
from kidsql.experiments.steps import teacher_origin


@dataclass
class DemoConfig(RunConfig):
    # The students start from a shared warm-up of 150 SFT steps, then train 100 steps per method: from the cut
    # teacher layer a student's first 150 steps are the steep part of its learning curve
    # (docs/results/bench-cpu-450steps-v2/), where small numeric differences between CPUs move one-seed scores a
    # lot; the methods are compared past it, within the demo's time. The teacher is the shipped one
    # (kidsql.experiments.shipped_teacher).
    student_warmup_steps: int = config_field("SFT steps on gold before distillation, trained once and shared by "
                                             "every method (past the steep part of the students' learning curve; "
                                             "0: none)", 150)
    student_steps: int = config_field("optimiser steps of every student after the warm-up (the same budget for "
                                      "every method)", 100)
    methods: str = config_field("comma list of student methods (same teacher, student and budget)", "sft,rkd,kid")
    force: bool = config_field("replace an existing report (and the demo's students) in --out", False)


def conclusion(ex_by_method: dict[str, float | None], teacher_ex: float | None, focus: str = "kid",
               paired: dict[str, Any] | None = None) -> str:
    """One sentence from the numbers: `focus` against every other student as the paired difference of dev EX
    with its 95 % bootstrap interval (`kidsql.stats`; `paired[other]` a `PairedDifference`), and the teacher. A
    difference whose interval holds 0 is said to be no clear difference, never a win or a loss."""
    from kidsql.stats import describe

    teacher = f"teacher {teacher_ex:.1f} EX" if teacher_ex is not None else "teacher not scored"
    known = {m: v for m, v in ex_by_method.items() if v is not None}
    if focus not in known:
        if not known:
            return f"No student was scored; {teacher}."
        return "Students: " + ", ".join(f"{m.upper()} {v:.1f} EX" for m, v in known.items()) + f"; {teacher}."
    parts = [describe(focus.upper(), other.upper(), paired[other]) for other in known
             if other != focus and paired and other in paired]
    body = "; ".join(parts) if parts else "the only student"
    return f"{focus.upper()} {known[focus]:.1f} EX. {body}; {teacher}."


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the demo per `cfg`; returns what report.json holds (plus the Markdown table). `--out` is locked
    meanwhile, so a second demo into it is refused instead of sharing its students."""
    from kidsql.run_folder import locked
    from kidsql.validate import writable_folder

    with locked(writable_folder(cfg.out, "--out")):
        return _run_demo(cfg)


def _run_demo(cfg: DemoConfig) -> dict[str, Any]:
    from kidsql.experiments.report import environment, markdown_table, relative
    from kidsql.files import write_atomic, write_json

    out = Path(cfg.out)
    if ((out / "report.md").exists() or (out / "report.json").exists()) and not cfg.force:
        raise KidsqlError(f"{out}/report.md already exists; pass --force to replace it or choose another --out")
    students_dir = out / "students"
    if students_dir.is_dir() and any(students_dir.iterdir()) and not cfg.force:
        raise KidsqlError(f"{students_dir}: holds the students of an interrupted demo; pass --force to train them "
                          "again or choose another --out")
    methods = parse_methods(cfg.methods)
    cfg.check()
    stages = steps.Stages(3 + len(methods) + (1 if cfg.student_warmup_steps else 0))

    stages("embedded benchmark" if not cfg.data else f"benchmark {cfg.data}")
    bench = steps.resolve_benchmark(cfg)
    stages(f"teacher ({cfg.teacher}, sft)")
    teacher_dir = steps.resolve_teacher(bench, cfg)
    student = steps.resolve_student(cfg.student, teacher_dir)
    if cfg.student_warmup_steps:
        from kidsql.experiments.warmup import warm_student

        stages(f"student warm-up ({cfg.student_warmup_steps} SFT steps, shared by every method)")
        student = warm_student(bench, student, student_budget(cfg), cfg.student_warmup_steps, seed=cfg.seed)

    trained: dict[str, Any] = {}
    for method in methods:
        stages(f"distil student ({method})")
        run_dir = out / "students" / method
        if cfg.force and run_dir.exists():
            shutil.rmtree(run_dir)
        trained[method] = steps.train_student(bench, method, student, teacher_dir, run_dir, student_budget(cfg),
                                          seed=cfg.seed, overrides=cfg.run_overrides())

    stages("evaluate teacher and students on dev (execution)")
    models = [("teacher", teacher_dir)] + [(m, r.model_dir) for m, r in trained.items()]
    scored: dict[str, dict[str, Any]] = {}
    for name, model_dir in models:
        preds = steps.predict(model_dir, bench, "dev", cfg.eval_limit, max_new_tokens=cfg.max_new_tokens,
                          batch_size=cfg.gen_batch_size, use_evidence=cfg.use_evidence)
        pred_file = write_json(out / "predictions" / f"{name}_dev.json", preds)
        report = steps.score(bench, "dev", preds, limit=cfg.eval_limit, workers=cfg.eval_workers,
                         use_evidence=cfg.use_evidence)
        scored[name] = {"metrics": steps.summary_metrics(report), "predictions": str(pred_file), "model_dir": str(model_dir),
                        "ex_per_example": steps.ex_per_example(report)}

    sft_time = trained["sft"].mean_step_time_s if "sft" in trained else None
    students = {}
    for method, res in trained.items():
        students[method] = {
            **scored[method], "mean_step_time_s": res.mean_step_time_s,
            "step_time_vs_sft": relative(res.mean_step_time_s, sft_time), "tokens_per_s": res.tokens_per_s,
            "peak_memory_mb": res.peak_memory_mb, "peak_memory_kind": res.peak_memory_kind, "steps": res.steps,
            "final_loss": res.final_loss,
        }
    rows = [_row(f"teacher {cfg.teacher}", "sft", scored["teacher"]["metrics"], None)]
    rows += [_row(f"student {cfg.student}", m, s["metrics"], s["step_time_vs_sft"]) for m, s in students.items()]
    table = markdown_table(["model", "method", "EX", "TS", "EM", "step time vs SFT"], rows, numeric_from=2)
    paired = _paired_vs(FOCUS, students)
    sentence = conclusion({m: s["metrics"]["ex"] for m, s in students.items()}, scored["teacher"]["metrics"]["ex"],
                          FOCUS, paired)

    data = {
        "kind": "demo", "environment": environment(), "config": dataclasses.asdict(cfg), "benchmark": str(bench),
        "split": "dev", "eval_limit": cfg.eval_limit,
        "teacher": {"spec": cfg.teacher, **scored["teacher"]}, "students": students,
        "paired": {f"{m}": {f"vs_{FOCUS}": p.to_dict()} for m, p in _paired_vs(FOCUS, students, swap=True).items()},
        "conclusion": sentence, "markdown_table": table,
    }
    write_json(out / "report.json", data)
    write_atomic(out / "report.md", _markdown(cfg, bench, table, sentence, data))
    return data


FOCUS = "kid"


def _paired_vs(focus: str, students: dict[str, dict[str, Any]], swap: bool = False) -> dict[str, Any]:
    """{other: PairedDifference of focus minus other} over the dev examples (swap: other minus focus, the
    bench's `paired` orientation)."""
    from kidsql.stats import paired_bootstrap

    if focus not in students:
        return {}
    mine = [float("nan") if x is None else float(x) for x in students[focus]["ex_per_example"]]
    out = {}
    for other, s in students.items():
        if other == focus:
            continue
        theirs = [float("nan") if x is None else float(x) for x in s["ex_per_example"]]
        out[other] = paired_bootstrap(theirs, mine) if swap else paired_bootstrap(mine, theirs)
    return out


def _row(model: str, method: str, metrics: dict[str, Any], vs_sft: float | None) -> list[str]:
    from kidsql.experiments.report import fmt

    return [model, method, fmt(metrics["ex"]), fmt(metrics["ts"]), fmt(metrics["em"]), fmt(vs_sft, 2, "x")]


def _markdown(cfg: DemoConfig, bench: Path, table: str, sentence: str, data: dict[str, Any]) -> str:
    env = data["environment"]
    n = data["teacher"]["metrics"]["scored"]
    return (
        "# kidsql demo\n\n"
        f"Benchmark `{bench}`, split dev ({n} scored examples). Teacher `{cfg.teacher}` ({teacher_origin(cfg)}), "
        f"students `{cfg.student}`"
        + (f" warmed up by {cfg.student_warmup_steps} shared SFT steps" if cfg.student_warmup_steps else "")
        + f" ({cfg.student_steps} steps each, batch {cfg.batch_size}, lr {cfg.learning_rate}).\n\n"
        + table + "\n" + sentence + "\n\n"
        "The conclusion's differences are paired over the same dev examples, with a 95 % bootstrap interval "
        "(`kidsql.stats`); one whose interval holds 0 is no clear difference.\n\n"
        "EX: execution accuracy; TS: correct on every test-suite instance of the database; EM: exact-set match. "
        "Step time: mean optimiser step time relative to SFT's (same machine, same run).\n\n"
        f"`{env['command']}` — kidsql {env['kidsql_version']}, torch {env['torch_version']}, "
        f"{env['cpu_count']} CPUs, {env['date']}.\n"
    )
