"""kidsql's evaluator against the official test-suite script on the same rows, side by side in one run.

The rows are mutated spider-de dev gold queries (`official_eval.mutations`: DISTINCT, swapped columns, ORDER BY
direction, LIMIT at every nesting level, aggregates, operators, dropped conditions, case, syntax errors, joins).
Both evaluators judge every row on one core (kidsql: `workers=1`, a cold gold-result cache; the official script:
its per-row steps in this process), then kidsql runs again with all cores. Printed and written to
`benchmarks/results/eval_speed.md`: seconds, the speed ratio, and the agreement per metric (EX, EM, hardness)
over the rows where the official script gives a verdict, with the first disagreements listed.

    python benchmarks/eval_speed.py [--data ../shared/data/spider-de] [--per-gold 6] [--metric ex|all]
                                    [--plug-value] [--limit N] [--out FILE] [--profile]

`--profile` skips the comparison and profiles kidsql's side alone (cProfile over one worker's work, run in this
process), to see where its time goes.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from official_eval import Official, mutated_rows, official_available  # noqa: E402

from kidsql.data.predictions import read_gold  # noqa: E402
from kidsql.data.types import Example  # noqa: E402
from kidsql.evaluate import evaluate  # noqa: E402
from kidsql.paths import shared_data_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "eval_speed.md"


def cpu_s() -> float:
    """CPU seconds of this process and its finished children: on a shared machine, the fair measure of work."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_official(official: Official, rows, golds, db_dir: Path, want_em: bool, plug_value: bool):
    start, cpu = time.perf_counter(), cpu_s()
    out = []
    for i, _, pred in rows:
        g = golds[i]
        out.append(official.row(g.sql, pred, g.db_id, db_dir / g.db_id / f"{g.db_id}.sqlite", want_em=want_em,
                                plug_value=plug_value))
    return out, time.perf_counter() - start, cpu_s() - cpu


def run_kidsql(rows, golds, db_dir: Path, tables, metrics, workers: int, plug_value: bool):
    from kidsql.data.spider import load_tables

    schemas = load_tables(tables) if "em" in metrics else None
    examples = [Example(db_id=golds[i].db_id, question="", sql=golds[i].sql) for i, _, _ in rows]
    with tempfile.TemporaryDirectory(prefix="kidsql-bench-") as tmp:
        os.environ["KIDSQL_CACHE"] = tmp
        start, cpu = time.perf_counter(), cpu_s()
        report = evaluate(examples, [p for _, _, p in rows], db_dir, metrics=metrics, schemas=schemas,
                          workers=workers, show_progress=False, hardness="em" in metrics,
                          plug_value=plug_value)
        return report.verdicts, time.perf_counter() - start, cpu_s() - cpu


def profile_kidsql(rows, golds, db_dir: Path, tables, metrics, plug_value: bool, top: int = 30) -> str:
    """kidsql's side alone, profiled: the worker's `judge` over every row in this process (no pool, no cache)."""
    import cProfile
    import io
    import pstats

    from kidsql import evaluate as ev
    from kidsql.data.spider import load_tables

    db_ids = {golds[i].db_id for i, _, _ in rows}
    paths = {d: (db_dir / d / f"{d}.sqlite").resolve() for d in db_ids}
    schemas = load_tables(tables) if "em" in metrics else {}
    ctx = ev._Context(paths, {d: () for d in db_ids}, schemas, "em" in metrics, "em" in metrics, "spider", False,
                      plug_value, ev.DEFAULT_TIMEOUT_S, None)
    tasks = [ev._Task(k, golds[i].sql, pred, golds[i].db_id, "") for k, (i, _, pred) in enumerate(rows)]
    profiler = cProfile.Profile()
    profiler.enable()
    for task in tasks:
        ev.judge(ctx, task)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def startup_s(repeats: int = 5) -> tuple[float, float]:
    """Fastest wall time of `kidsql evaluate --help` and of a bare interpreter, over `repeats` runs each."""
    import subprocess

    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        return min(times)

    return best([sys.executable, "-m", "kidsql.cli", "evaluate", "--help"]), best([sys.executable, "-c", "pass"])


def agreement(official, ours, rows, metric: str) -> tuple[int, int, list[str]]:
    same = total = 0
    diffs = []
    for (i, kind, pred), o, v in zip(rows, official, ours):
        want = getattr(o, metric)
        if want is None:
            continue
        got = v.hardness if metric == "hardness" else getattr(v, metric)
        total += 1
        if got == want:
            same += 1
        elif len(diffs) < 20:
            diffs.append(f"row gold {i} {kind}: official {want}, kidsql {got}: {pred[:160]}")
    return same, total, diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "spider-de")
    parser.add_argument("--per-gold", type=int, default=6, help="mutations sampled per gold query (with itself)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the Markdown table goes")
    parser.add_argument("--limit", type=int, default=None, help="only the first N gold queries")
    parser.add_argument("--metric", choices=("ex", "all"), default="ex", help="ex: EX only; all: EX, EM, hardness")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plug-value", action="store_true", help="both evaluators with plug-value on")
    parser.add_argument("--profile", action="store_true",
                        help="only profile kidsql's side (one worker's work, in this process); print where time goes")
    args = parser.parse_args()
    reason = official_available()
    if reason and not args.profile:
        sys.exit(reason)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")  # other jobs on the machine
    golds = read_gold(args.data / "dev_gold.sql")[: args.limit]
    rows = mutated_rows(golds, seed=args.seed, per_gold=args.per_gold)
    db_dir, tables = args.data / "database", args.data / "tables.json"
    metrics = ("ex",) if args.metric == "ex" else ("ex", "em")
    if args.profile:
        print(profile_kidsql(rows, golds, db_dir, tables, metrics, args.plug_value))
        return
    official = Official(tables)
    off, off_s, off_cpu = run_official(official, rows, golds, db_dir, "em" in metrics, args.plug_value)
    ours1, ours1_s, ours1_cpu = run_kidsql(rows, golds, db_dir, tables, metrics, 1, args.plug_value)
    cores = os.cpu_count() or 1
    _, oursn_s, oursn_cpu = run_kidsql(rows, golds, db_dir, tables, metrics, cores, args.plug_value)
    lines = [
        f"Command: `{' '.join(['python', 'benchmarks/eval_speed.py', *sys.argv[1:]])}`",
        "",
        f"{len(rows)} rows: {len(golds)} spider-de dev gold queries x up to {args.per_gold} mutations (seed "
        f"{args.seed}); metrics {', '.join(metrics)}; cold gold-result cache"
        + ("; plug-value on" if args.plug_value else "") + f". {os.cpu_count()} cores, load average {load:.2f} "
        "at the start (above 0: other jobs shared the machine).",
        "",
        "| evaluator | workers | wall s | speed vs official (wall) | CPU s | speed vs official (CPU) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| official test-suite script | 1 | {off_s:.2f} | 1.00x | {off_cpu:.2f} | 1.00x |",
        f"| kidsql | 1 | {ours1_s:.2f} | {off_s / ours1_s:.2f}x | {ours1_cpu:.2f} | {off_cpu / ours1_cpu:.2f}x |",
        f"| kidsql | {cores} | {oursn_s:.2f} | {off_s / oursn_s:.2f}x | {oursn_cpu:.2f} | "
        f"{off_cpu / oursn_cpu:.2f}x |",
        "",
        "| metric | rows with an official verdict | identical | agreement |",
        "|---|---:|---:|---:|",
    ]
    cli_s, bare_s = startup_s()
    lines[4:4] = [f"Start-up: `kidsql evaluate --help` {cli_s:.2f} s (bare Python {bare_s:.2f} s), best of 5.", ""]
    all_diffs = []
    for metric in ("ex", "em", "hardness") if "em" in metrics else ("ex",):
        same, total, diffs = agreement(off, ours1, rows, metric)
        lines.append(f"| {metric} | {total} | {same} | {100.0 * same / max(total, 1):.2f} % |")
        all_diffs += [f"{metric}: {d}" for d in diffs]
    if all_diffs:
        lines += ["", "First disagreements:", ""] + [f"- {d}" for d in all_diffs]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
