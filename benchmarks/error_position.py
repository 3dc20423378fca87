"""Where do wrong predictions leave the gold SQL? A check of how much exposure bias there is to cure.

    python benchmarks/error_position.py BENCH_DIR PREDS.json [PREDS.json ...] [--split dev]

KID trains a student on prefixes holding its own mistakes, so that one wrong token does not derail the rest of
the query. That can only pay where wrong queries go wrong early, with many tokens left to spoil. For every
prediction that is not the gold string, this prints (in the benchmark's own tokenizer) the token edit distance to
gold and where the first differing token lies, as a fraction of the gold length (0.9: in the last tenth, e.g.
the final literal of a WHERE clause). Predictions files are the bench's `preds_<split>.json` (a JSON list of SQL
strings in split order). String-level only: a differently written but equivalent query counts as wrong here.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def edit_distance(a: list[int], b: list[int]) -> int:
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, row[0] = row[0], i
        for j in range(1, len(b) + 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
    return row[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path)
    parser.add_argument("preds", type=Path, nargs="+")
    parser.add_argument("--split", default="dev")
    args = parser.parse_args()

    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(str(args.bench / "tokenizer"))
    gold = [e["query"] for e in json.loads((args.bench / f"{args.split}.json").read_text(encoding="utf-8"))]
    print("| predictions | exact | wrong | edit 1 / 2 / 3 / 4+ | first wrong token in gold's 1st / 2nd / 3rd / last quarter |")
    print("|---|---:|---:|---|---|")
    for path in args.preds:
        preds = json.loads(path.read_text(encoding="utf-8"))
        if len(preds) != len(gold):
            raise SystemExit(f"{path}: {len(preds)} predictions for {len(gold)} {args.split} examples")
        edits, quarters, exact = Counter(), Counter(), 0
        for g, p in zip(gold, preds):
            if g.strip() == p.strip():
                exact += 1
                continue
            gt, pt = tok(g)["input_ids"], tok(p)["input_ids"]
            edits[min(edit_distance(gt, pt), 4)] += 1
            first = next((i for i, (x, y) in enumerate(zip(gt, pt)) if x != y), min(len(gt), len(pt)))
            quarters[min(4 * first // max(len(gt), 1), 3)] += 1
        wrong = len(gold) - exact
        print(f"| {path} | {exact} | {wrong} | {' / '.join(str(edits[k]) for k in (1, 2, 3, 4))} | "
              f"{' / '.join(str(quarters[k]) for k in range(4))} |")


if __name__ == "__main__":
    main()
