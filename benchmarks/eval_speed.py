"""How long `kidsql evaluate` takes for EX on the spider-de dev gold queries judged against themselves.

Four runs: one process vs all cores, each with a cold gold-result cache (a fresh, private cache folder) and then
warm (the same folder again). Gold-against-itself executes every query twice when cold (gold + prediction) and
once when warm, so the warm/cold ratio shows what the cache saves. Prints a Markdown table and writes
`benchmarks/results/eval_speed.md`.

    python benchmarks/eval_speed.py [--data ../shared/data/spider-de] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from kidsql.commands.evaluate import read_gold
from kidsql.evaluate import evaluate
from kidsql.paths import shared_data_dir

RESULTS = Path(__file__).resolve().parent / "results" / "eval_speed.md"


def timed(golds, db_dir: Path, workers: int, cache: Path) -> tuple[float, int, int]:
    os.environ["KIDSQL_CACHE"] = str(cache)
    report = evaluate(golds, [g.sql for g in golds], db_dir, metrics=("ex",), workers=workers, show_progress=False)
    assert report.gold_errors == 52, report.gold_errors  # the known spider-de failures, nothing else
    return report.elapsed_s, report.gold_executed, report.gold_cache_hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "spider-de")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting; the median is reported")
    args = parser.parse_args()
    golds = read_gold(args.data / "dev_gold.sql")
    cores = os.cpu_count() or 1
    rows = []
    for workers in (1, cores):
        cold, warm = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="kidsql-bench-") as tmp:
                cold.append(timed(golds, args.data / "database", workers, Path(tmp)))
                warm.append(timed(golds, args.data / "database", workers, Path(tmp)))
        rows.append((workers, statistics.median(t for t, _, _ in cold), statistics.median(t for t, _, _ in warm),
                     cold[0][1], warm[0][2]))
    base = rows[0][1]
    lines = [
        f"EX on spider-de dev gold vs itself ({len(golds)} queries, 52 gold errors), median of {args.repeats} runs, "
        f"{cores} cores.",
        "",
        "| workers | cache | seconds | speed-up vs 1 worker cold | gold executed | gold from cache |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for workers, cold_s, warm_s, executed, hits in rows:
        lines.append(f"| {workers} | cold | {cold_s:.2f} | {base / cold_s:.2f}x | {executed} | - |")
        lines.append(f"| {workers} | warm | {warm_s:.2f} | {base / warm_s:.2f}x | 0 | {hits} |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
