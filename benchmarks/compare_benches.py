"""Two `kidsql bench` folders side by side: every method's dev EX in each, and the paired difference (second
minus first) over the seeds both ran and the same examples, with its 95 % bootstrap interval (`kidsql.stats`).

For questions such as "what does the shared student warm-up change?": run the bench twice with one option
changed (same teacher, seeds and splits) and compare the folders; also each bench's ranking.

    python benchmarks/compare_benches.py FIRST_BENCH_DIR SECOND_BENCH_DIR [--split dev] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kidsql.stats import paired_bootstrap


def per_example(bench_dir: Path, split: str) -> dict[str, dict[int, list[float]]]:
    """{method: {seed: [0/1 or NaN per example]}} from a bench folder's runs/<method>/seed<N>/result.json."""
    out: dict[str, dict[int, list[float]]] = {}
    for result_file in sorted(Path(bench_dir).glob("runs/*/seed*/result.json")):
        result = json.loads(result_file.read_text(encoding="utf-8"))
        verdicts = result.get("splits", {}).get(split, {}).get("ex_per_example")
        if verdicts is None:
            continue
        seed = int(result_file.parent.name.removeprefix("seed"))
        out.setdefault(result_file.parent.parent.name, {})[seed] = [
            float("nan") if v is None else float(v) for v in verdicts]
    return out


def compare(first: Path, second: Path, split: str = "dev") -> list[dict[str, Any]]:
    """One row per method both benches ran: mean EX in each (over the shared seeds) and the paired difference."""
    a, b = per_example(first, split), per_example(second, split)
    rows = []
    for method in [m for m in a if m in b]:
        seeds = sorted(set(a[method]) & set(b[method]))
        if not seeds:
            continue
        xa, xb = [a[method][s] for s in seeds], [b[method][s] for s in seeds]
        mean = lambda xs: 100 * sum(v for row in xs for v in row if v == v) / sum(  # noqa: E731
            1 for row in xs for v in row if v == v)
        rows.append({"method": method, "seeds": seeds, "first": mean(xa), "second": mean(xb),
                     "paired": paired_bootstrap(xb, xa).to_dict()})
    return sorted(rows, key=lambda r: -r["second"])


def markdown(rows: list[dict[str, Any]], first: Path, second: Path, split: str) -> str:
    rank_a = {r["method"]: i + 1 for i, r in enumerate(sorted(rows, key=lambda r: -r["first"]))}
    lines = [f"| method | {split} EX, {first.name} (rank) | {split} EX, {second.name} (rank) | second - first "
             "[95 % CI] |", "|---|---:|---:|---|"]
    for i, r in enumerate(rows):
        p = r["paired"]
        word = {"better": "higher", "worse": "lower", "tie": "tie"}[p["verdict"]]
        lines.append(f"| {r['method']} | {r['first']:.1f} ({rank_a[r['method']]}) | {r['second']:.1f} ({i + 1}) | "
                     f"{p['diff']:+.1f} [{p['ci95'][0]:+.1f}, {p['ci95'][1]:+.1f}] {word} |")
    n = rows[0]["paired"] if rows else None
    tail = (f"\nPaired over seeds {rows[0]['seeds']} and the same {n['n_examples']} {split} examples; 95 % "
            "bootstrap interval (seeds and examples resampled); \"tie\": the interval holds 0.\n") if rows else ""
    return "\n".join(lines) + "\n" + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = compare(args.first, args.second, args.split)
    if not rows:
        raise SystemExit(f"{args.first} and {args.second}: no method scored on {args.split} in both; run both benches")
    text = markdown(rows, args.first, args.second, args.split)
    print(text, end="")
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
