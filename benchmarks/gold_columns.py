"""How often the prompt budget drops a table or column the gold SQL uses, with and without `keep_gold`.

    python benchmarks/gold_columns.py [--data ../shared/data/spider-de] [--budgets 512,1024] [--vocab 32000]

Builds every dev prompt of a Spider-layout folder with the product's prompt options (2 sample values per column,
matched values) under each token budget, counted by a byte-level BPE tokenizer trained on the fly on the
folder's own schemas, questions and queries (no hub tokenizer is reachable here; a real model's tokenizer gives
other counts). For each budget: prompts shortened, prompts that lose an item of `kidsql.prompts.gold_items` (a
table or column the gold SQL uses) as evaluation builds them, and as training builds them (`keep_gold=True`),
and prompts still over the budget. Prints a Markdown table and writes it to benchmarks/results/gold_columns.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train_tokenizer(texts: list[str], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def columns_in(prompt: str) -> set[tuple[str, str]]:
    """(table, column) pairs rendered in a prompt (`t.c (` opens every column's description)."""
    names = r"(?:`[^`]+`|\w+)"
    found = re.findall(rf"({names})\.({names}) \(", prompt)
    return {(t.strip("`").lower(), c.strip("`").lower()) for t, c in found}


def main() -> int:
    from kidsql.data.load import load_benchmark
    from kidsql.prompts import PromptOptions, PromptStats, build_prompts, gold_items, token_counter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "spider-de"))
    parser.add_argument("--split", default="dev")
    parser.add_argument("--budgets", default="512,1024")
    parser.add_argument("--vocab", type=int, default=32000)
    args = parser.parse_args()
    bench = load_benchmark(Path(args.data), args.split)
    full = build_prompts(bench, bench.examples, PromptOptions())
    tok = train_tokenizer(full + [e.sql for e in bench.examples], args.vocab)
    gold = [gold_items(e.sql, bench.schemas[e.db_id]) for e in bench.examples]
    lengths = sorted(len(tok(p)["input_ids"]) for p in full)
    rows = []
    for budget in (int(b) for b in args.budgets.split(",")):
        options = PromptOptions(max_prompt_tokens=budget, count_tokens=token_counter(tok))
        line = [str(budget)]
        for keep in (False, True):
            stats = PromptStats()
            prompts = build_prompts(bench, bench.examples, options, keep_gold=keep, stats=stats)
            lose = sum(1 for g, p in zip(gold, prompts) if g - columns_in(p))
            line += ([str(stats.shortened)] if not keep else []) + [str(lose)]
            if keep:
                line.append(str(stats.over_budget))
        rows.append(line)
    table = ("| budget (tokens) | prompts shortened | lose a gold item: evaluation prompts | lose a gold item: "
             "training prompts (keep_gold) | still over budget (training) |\n|---:|---:|---:|---:|---:|\n"
             + "".join("| " + " | ".join(r) + " |\n" for r in rows))
    head = (f"{args.data} {args.split}: {len(bench.examples)} prompts, full length median {lengths[len(lengths) // 2]} "
            f"and max {lengths[-1]} tokens (BPE, {len(tok)} tokens, trained on the folder)\n\n")
    print(head + table)
    out = ROOT / "benchmarks" / "results" / "gold_columns.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"`python benchmarks/gold_columns.py --budgets {args.budgets} --vocab {args.vocab}`\n\n"
                   + head + table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
