"""Tiny shared test fixtures: a Spider-layout benchmark on one hand-built SQLite db, a word-level tokenizer, and
micro Llama configs, so trainer/generation tests run in seconds on 2 CPU cores.

Usage:
    bench = write_benchmark(tmp_path / "bench")         # train.json, dev.json, tables.json, database/, tokenizer/
    tok = load_bench_tokenizer(bench)                      # PreTrainedTokenizerFast with <s> </s> <pad> <unk>
    model = tiny_llama(tok, seed=0)                        # LlamaForCausalLM with ~50k parameters
    spec = "tiny:" + str(write_model_config(tmp_path))     # the same micro config as a `load_model` spec
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

DB_ID = "concerts"

TABLES = {
    "singer": [("singer_id", "integer"), ("name", "text"), ("country", "text"), ("age", "integer")],
    "concert": [("concert_id", "integer"), ("singer_id", "integer"), ("year", "integer"), ("city", "text")],
}
ROWS = {
    "singer": [(1, "Anna", "France", 31), (2, "Ben", "Spain", 25), (3, "Clara", "France", 42), (4, "Dan", "Italy", 19)],
    "concert": [(1, 1, 2019, "Paris"), (2, 1, 2021, "Lyon"), (3, 2, 2021, "Madrid"), (4, 3, 2020, "Paris")],
}

# (question, gold SQL): short, consistent phrasing, all four SQL shapes a tiny model can overfit.
PAIRS = [
    ("how many singers are there ?", "SELECT count(*) FROM singer"),
    ("list the names of all singers .", "SELECT name FROM singer"),
    ("which singers are from France ?", "SELECT name FROM singer WHERE country = 'France'"),
    ("how many concerts are in Paris ?", "SELECT count(*) FROM concert WHERE city = 'Paris'"),
    ("what is the average age of singers ?", "SELECT avg(age) FROM singer"),
    ("list the cities of concerts in 2021 .", "SELECT city FROM concert WHERE year = 2021"),
    ("how many singers are from each country ?", "SELECT country , count(*) FROM singer GROUP BY country"),
    ("who is the oldest singer ?", "SELECT name FROM singer ORDER BY age DESC LIMIT 1"),
]

SPECIALS = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}

MICRO_CONFIG = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=4, max_position_embeddings=512, tie_word_embeddings=True)


def write_database(path: Path) -> Path:
    return write_tables(path, {f"{table} ({', '.join(f'{c} {t}' for c, t in cols)}, PRIMARY KEY ({cols[0][0]}))":
                               ROWS[table] for table, cols in TABLES.items()})


def write_tables(path: Path, tables: dict[str, list[tuple]]) -> Path:
    """A SQLite file at `path` (its folders created): {"name (column definitions)": rows} for each table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    for table, rows in tables.items():
        conn.execute(f"CREATE TABLE {table}")
        if rows:
            conn.executemany(f"INSERT INTO {table.split()[0]} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    conn.commit()
    conn.close()
    return path


def tables_json() -> list[dict[str, Any]]:
    names = list(TABLES)
    cols = [[-1, "*"]] + [[i, c] for i, t in enumerate(names) for c, _ in TABLES[t]]
    types = ["text"] + [("number" if ty == "integer" else "text") for t in names for _, ty in TABLES[t]]
    index = {(names[i], c): k for k, (i, c) in enumerate(cols) if i >= 0}
    return [{
        "db_id": DB_ID, "table_names": names, "table_names_original": names,
        "column_names": [[i, c.replace("_", " ")] for i, c in cols], "column_names_original": cols,
        "column_types": types, "primary_keys": [index[("singer", "singer_id")], index[("concert", "concert_id")]],
        "foreign_keys": [[index[("concert", "singer_id")], index[("singer", "singer_id")]]],
    }]


def write_benchmark(root: Path, *, with_tokenizer: bool = True) -> Path:
    """A Spider-layout folder: train.json (all pairs), dev.json (the first 4), tables.json, the db, tokenizer/."""
    root.mkdir(parents=True, exist_ok=True)
    write_database(root / "database" / DB_ID / f"{DB_ID}.sqlite")
    (root / "tables.json").write_text(json.dumps(tables_json()), encoding="utf-8")
    rows = [{"db_id": DB_ID, "question": q, "query": s} for q, s in PAIRS]
    (root / "train.json").write_text(json.dumps(rows), encoding="utf-8")
    (root / "dev.json").write_text(json.dumps(rows[:4]), encoding="utf-8")
    if with_tokenizer:
        build_tokenizer(_corpus(root)).save_pretrained(str(root / "tokenizer"))
    return root


def _corpus(root: Path) -> list[str]:
    """Texts the tokenizer must cover: the real prompts when kidsql.prompts exists, plus questions and SQL."""
    texts = [q for q, _ in PAIRS] + [s for _, s in PAIRS]
    try:
        from kidsql.data.load import load_benchmark
        from kidsql.prompts import build_prompt

        bench = load_benchmark(root, "train")
        texts += [build_prompt(e, bench.schemas[e.db_id], bench.db_path(e.db_id)) for e in bench.examples]
    except ImportError:
        pass
    return texts


def build_tokenizer(texts: list[str]) -> Any:
    """Word-level tokenizer (whitespace/punctuation split) with <s> prepended to every encoded text."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=SPECIALS["unk"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = list(SPECIALS.values())
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials))
    bos = SPECIALS["bos"]
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=SPECIALS["eos"],
                                   pad_token=SPECIALS["pad"], unk_token=SPECIALS["unk"])


def load_bench_tokenizer(bench: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(bench / "tokenizer"))


def write_model_config(folder: Path, **overrides: Any) -> Path:
    """MICRO_CONFIG as a YAML file, for `load_model("tiny:<path>")`."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "micro.yaml"
    path.write_text(yaml.safe_dump({**MICRO_CONFIG, **overrides}), encoding="utf-8")
    return path


def tiny_llama(tokenizer: Any, *, seed: int = 0, **overrides: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**{**MICRO_CONFIG, **overrides}, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(cfg)
