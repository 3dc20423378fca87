"""What a benchmark holds, as Markdown: examples per split, database and schema counts, the hardness mix of a
split, and sample prompts exactly as the models will see them. Read before spending compute on a benchmark.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kidsql.data.types import Benchmark


def hardness_mix(bench: Benchmark) -> Counter:
    """Examples per Spider hardness level; a gold query the parser rejects counts as "unparsed"."""
    from kidsql.sql.hardness import hardness

    mix: Counter = Counter()
    for ex in bench.examples:
        try:
            mix[hardness(ex.sql, bench.schemas.get(ex.db_id))] += 1
        except Exception:  # a gold query the parser rejects is counted, not fatal
            mix["unparsed"] += 1
    return mix


def describe_benchmark(bench_dir: Path, split: str = "dev", *, kind: str = "auto", use_evidence: bool = True,
                       db_dir: Path | None = None, samples: int = 1) -> str:
    """The Markdown `kidsql data show` prints for `split` of the benchmark at `bench_dir`."""
    from kidsql.data.load import detect_kind, list_splits, load_benchmark
    from kidsql.prompts import build_prompt
    from kidsql.sql.hardness import LEVELS

    kind = detect_kind(bench_dir, split) if kind == "auto" else kind
    bench = load_benchmark(bench_dir, split, kind=kind, use_evidence=use_evidence, db_dir=db_dir)
    splits = list_splits(bench_dir, kind)
    n_db_files = sum(1 for _ in bench.db_dir.glob("*/*.sqlite")) if bench.db_dir.is_dir() else 0
    split_dbs = {e.db_id for e in bench.examples}
    missing = sorted(d for d in split_dbs if not bench.db_path(d).is_file())
    lines = [f"# {bench.name} ({kind})\n", "| split | examples |\n|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in splits.items()]
    lines += ["\n| count | value |\n|---|---|", f"| examples in {split} | {len(bench.examples)} |",
              f"| databases used by {split} | {len(split_dbs)} |",
              f"| database files in {bench.db_dir} | {n_db_files} |", f"| schemas | {len(bench.schemas)} |"]
    if bench.examples:
        lines.append(f"| with evidence | {sum(1 for e in bench.examples if e.evidence)} |")
    if missing:
        lines.append(f"\nwarning: {len(missing)} database(s) used by {split} are missing: {', '.join(missing)}")
    mix = hardness_mix(bench)
    lines.append("\n| hardness | examples | share |\n|---|---|---|")
    total = sum(mix.values()) or 1
    for level in [*LEVELS, *sorted(set(mix) - set(LEVELS))]:
        lines.append(f"| {level} | {mix[level]} | {100 * mix[level] / total:.1f}% |")
    for ex in bench.examples[: max(samples, 0)]:
        db_path = bench.db_path(ex.db_id)
        prompt = build_prompt(ex, bench.schemas[ex.db_id], db_path if db_path.is_file() else None)
        lines.append(f"\n## sample prompt: {ex.id} ({ex.db_id})\n\n```\n{prompt}\n```\ngold: `{ex.sql}`")
    return "\n".join(lines)
