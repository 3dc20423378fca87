"""What execution-guided decoding buys: dev EX with N = 1, 4, 8 candidates for the teacher and a distilled student.

    python benchmarks/execution_guided.py --out docs/results/execution-guided

On the embedded benchmark's `cpu` preset with the demo's settings (`kidsql.experiments.config.RunConfig` defaults): the
cached SFT teacher (trained once, as `kidsql demo` does), and a KID student distilled from it with the demo's
budget into `--work` (reused when there). Every model decodes the first `--limit` dev questions with beam search
(`--ns`, N = 1 is greedy) and, with `--sample`, N samples as well; the first candidate that executes in the
sandbox is scored by execution against gold (`kidsql evaluate`'s EX). Time is the whole prediction (candidates
and their sandbox runs), reported relative to greedy of the same model in the same run: on a shared machine only
the ratios mean something. Writes README.md (table + command) and results.json to `--out`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def run_model(name: str, model_dir: Path, bench: Path, modes: list, limit: int | None, cfg) -> list[dict]:  # noqa: ANN001
    from kidsql.experiments import steps
    from kidsql.predict import load_for_inference
    from kidsql.sql.sandbox import execute

    model, tokenizer = load_for_inference(model_dir)
    examples, b = steps.split_examples(bench, "dev", limit)
    rows = []
    for guided in modes:
        start = time.perf_counter()
        preds = steps.predict(model_dir, bench, "dev", limit, max_new_tokens=cfg.max_new_tokens,
                          batch_size=cfg.gen_batch_size, model=model, tokenizer=tokenizer, guided=guided)
        seconds = time.perf_counter() - start
        report = steps.score(bench, "dev", preds, limit=limit, metrics=("ex",), show_progress=False)
        runs = sum(execute(b.db_path(e.db_id), p).ok for e, p in zip(examples, preds))
        rows.append({"model": name, "decoding": guided.describe(), "n": guided.num_return_sequences,
                     "ex": report.summary()["all"]["ex"], "executes": 100.0 * runs / len(preds),
                     "seconds": seconds, "questions": len(preds)})
        print(f"{name} {guided.describe()}: EX {rows[-1]['ex']:.1f}, executes {rows[-1]['executes']:.1f} %, "
              f"{seconds:.1f} s", file=sys.stderr)
    for r in rows:
        r["time_vs_greedy"] = r["seconds"] / rows[0]["seconds"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results/execution-guided"))
    parser.add_argument("--work", type=Path, default=Path("runs/execution-guided"), help="where the student is trained")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="a trained teacher folder to use instead of the cached demo teacher")
    parser.add_argument("--student", type=Path, default=None, help="a distilled student folder to use instead")
    parser.add_argument("--note", default="", help="a sentence for README.md on what is special about this run")
    parser.add_argument("--method", default="kid", help="distillation method of the student (default kid)")
    parser.add_argument("--ns", default="1,4,8", help="candidate counts (default 1,4,8)")
    parser.add_argument("--sample", action="store_true", help="also N sampled candidates (temperature 1)")
    parser.add_argument("--limit", type=int, default=200, help="first N dev questions (default 200, the demo's)")
    args = parser.parse_args()

    from kidsql.experiments import steps
    from kidsql.experiments.config import RunConfig, student_budget
    from kidsql.guided import GuidedDecoding

    cfg = RunConfig()
    bench = steps.resolve_benchmark(cfg)
    teacher = args.teacher or steps.resolve_teacher(bench, cfg)
    ns = [int(n) for n in args.ns.split(",")]
    modes = [GuidedDecoding(n) for n in ns]
    modes += [GuidedDecoding(n, do_sample=True) for n in ns if n > 1] if args.sample else []
    command = "python benchmarks/execution_guided.py " + " ".join(sys.argv[1:])
    rows = run_model("teacher", teacher, bench, modes, args.limit, cfg)
    write(args.out, command, cfg, args.method, teacher, None, rows, args.note)  # the teacher's rows survive a killed run
    student = args.student
    if student is None:
        student = args.work / args.method / "final"
        if not (student / "config.json").is_file():
            init = steps.resolve_student(cfg.student, teacher)
            steps.train_student(bench, args.method, init, teacher, args.work / args.method, student_budget(cfg),
                            seed=cfg.seed, resume="auto")
    rows += run_model(f"student ({args.method})", student, bench, modes, args.limit, cfg)
    print(write(args.out, command, cfg, args.method, teacher, student, rows, args.note))


def write(out: Path, command: str, cfg, method: str, teacher: Path, student: Path | None, rows: list,  # noqa: ANN001
          note: str) -> str:
    from kidsql.experiments.report import environment
    from kidsql.files import write_atomic, write_json
    from kidsql.experiments.report import markdown_table

    table = markdown_table(
        ["model", "decoding", "dev EX", "SQL that executes %", "time vs greedy", "seconds"],
        [[r["model"], r["decoding"], f"{r['ex']:.1f}", f"{r['executes']:.1f}", f"{r['time_vs_greedy']:.2f}x",
          f"{r['seconds']:.1f}"] for r in rows], numeric_from=2)
    write_json(out / "results.json", {"command": command, "note": note, "teacher": str(teacher), "student": str(student),
                                      "config": vars(cfg), "environment": environment(), "rows": rows})
    write_atomic(out / "README.md", f"""# Execution-guided decoding on the embedded benchmark (`cpu` preset)

    {command}

{note + chr(10) + chr(10) if note else ""}First {rows[0]['questions']} dev questions; teacher `{cfg.teacher}` ({cfg.teacher_steps} SFT steps, cached as
`kidsql demo` trains it, unless the note says otherwise), student `{cfg.student}` distilled with `{method}` for {cfg.student_steps} steps
(the demo's budget). Beam N: N beams, N returned, the first that executes in the sandbox is scored (beam 1 =
greedy); sample N: N samples at temperature 1. "SQL that executes": share of the scored queries that run without
error. Time: the whole prediction (decoding and sandbox runs) relative to greedy of the same model in the same
run; the 2-core machine was shared with other jobs, so seconds are inflated and only the ratios compare.

{table}""")
    return table


if __name__ == "__main__":
    main()
