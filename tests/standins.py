"""Stand-ins for real Hugging Face pairs, built in the test itself: three architectures with the quirks real
checkpoints have, random weights, and byte-level BPE tokenizers trained on the fly and saved with
`PreTrainedTokenizerFast.save_pretrained` (loaded back through `AutoTokenizer`, as a hub folder would be).

    qwen2:  Qwen2ForCausalLM pair; the tokenizer has no BOS and EOS = PAD = `<|endoftext|>` (Qwen's base models).
    llama:  LlamaForCausalLM pair; `<s>` BOS added to every prompt; the teacher's embedding matrix is padded
            beyond the tokenizer (as Qwen's and many Llama checkpoints are), the student's is not.
    gpt2:   GPT2LMHeadModel pair with few positions (`n_positions`), BOS = EOS = `<|endoftext|>` as GPT-2's own.

And a Spider-layout folder as Spider ships it (`train_spider.json` + `train_others.json`, `dev.json`,
`tables.json`, `database/<db>/<db>.sqlite`), whose `wide` database has a table long enough to overflow a
small position budget. Everything is tiny (hidden 32, vocabulary ~1k) so a test trains two steps in seconds.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

# ------------------------------------------------------------------------------------------- the Spider folder

TABLES = {
    "concerts": {
        "singer": [("singer_id", "integer"), ("name", "text"), ("country", "text"), ("age", "integer")],
        "concert": [("concert_id", "integer"), ("singer_id", "integer"), ("year", "integer"), ("city", "text")],
    },
    # one table of 60 measurement columns: its prompt overflows a 256-position model
    "wide": {
        "station": [("station_id", "integer"), ("station_name", "text")]
        + [(f"reading_{i:02d}_value", "real") for i in range(60)],
        "operator": [("operator_id", "integer"), ("operator_name", "text"), ("station_id", "integer")],
    },
}
ROWS = {
    "singer": [(1, "Anna", "France", 31), (2, "Ben", "Spain", 25), (3, "Clara", "France", 42)],
    "concert": [(1, 1, 2019, "Paris"), (2, 2, 2021, "Madrid"), (3, 3, 2020, "Paris")],
    "station": [(1, "North", *[float(i) for i in range(60)]), (2, "South", *[float(2 * i) for i in range(60)])],
    "operator": [(1, "Acme", 1), (2, "Beta", 2)],
}
TRAIN_SPIDER = [
    ("concerts", "how many singers are there ?", "SELECT count(*) FROM singer"),
    ("concerts", "list the names of all singers .", "SELECT name FROM singer"),
    ("concerts", "which singers are from France ?", "SELECT name FROM singer WHERE country = 'France'"),
    ("wide", "which station has the highest final measurement ?",  # names no column the SQL uses
     "SELECT station_name FROM station ORDER BY reading_59_value DESC LIMIT 1"),
]
TRAIN_OTHERS = [
    ("concerts", "how many concerts are in Paris ?", "SELECT count(*) FROM concert WHERE city = 'Paris'"),
    ("wide", "which operator runs the station North ?",
     "SELECT T1.operator_name FROM operator AS T1 JOIN station AS T2 ON T1.station_id = T2.station_id "
     "WHERE T2.station_name = 'North'"),
]
DEV = [
    ("concerts", "what is the average age of singers ?", "SELECT avg(age) FROM singer"),
    ("concerts", "list the cities of concerts in 2021 .", "SELECT city FROM concert WHERE year = 2021"),
    ("wide", "how many stations are there ?", "SELECT count(*) FROM station"),
    ("wide", "what is the reading 03 of station South ?",
     "SELECT reading_03_value FROM station WHERE station_name = 'South'"),
]


def write_spider_folder(root: Path) -> Path:
    """The Spider layout as shipped (no train.json, no tokenizer/): train_spider.json + train_others.json, dev.json,
    tables.json, database/."""
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for db_id, tables in TABLES.items():
        path = root / "database" / db_id / f"{db_id}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path)
        for table, cols in tables.items():
            conn.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in cols)}, PRIMARY KEY ({cols[0][0]}))")
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(cols))})", ROWS[table])
        conn.commit()
        conn.close()
        names = list(tables)
        cols = [[-1, "*"]] + [[i, c] for i, t in enumerate(names) for c, _ in tables[t]]
        types = ["text"] + [ty for t in names for _, ty in tables[t]]
        pks = [cols.index([i, tables[t][0][0]]) for i, t in enumerate(names)]
        entries.append({"db_id": db_id, "table_names_original": names, "table_names": names,
                        "column_names_original": cols, "column_names": cols, "column_types": types,
                        "primary_keys": pks, "foreign_keys": []})
    (root / "tables.json").write_text(json.dumps(entries), encoding="utf-8")
    for name, rows in (("train_spider", TRAIN_SPIDER), ("train_others", TRAIN_OTHERS), ("dev", DEV)):
        data = [{"db_id": d, "question": q, "query": s} for d, q, s in rows]
        (root / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    return root


def corpus() -> list[str]:
    """Text the stand-in tokenizers are trained on: every schema word, question and query of the folder."""
    words = [f"{t} {c} {ty}" for tables in TABLES.values() for t, cols in tables.items() for c, ty in cols]
    rows = [f"{q} {s}" for _, q, s in TRAIN_SPIDER + TRAIN_OTHERS + DEV]
    return (words + rows + ["table columns = [ ( | primary key values : ) , ] foreign keys matched question SQL:"]) * 4


# ---------------------------------------------------------------------------------------------------- tokenizers


def bpe_tokenizer(out_dir: Path, *, vocab_size: int = 1000, bos: str | None = None, eos: str, pad: str | None = None,
                  unk: str | None = None, add_bos: bool = False) -> Any:
    """A byte-level BPE tokenizer trained on `corpus()`, saved to `out_dir`, loaded back with AutoTokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    specials = list(dict.fromkeys(t for t in (bos, eos, pad, unk) if t))
    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    if add_bos and bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tok.token_to_id(bos))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return AutoTokenizer.from_pretrained(str(out_dir))


# -------------------------------------------------------------------------------------------------------- pairs


def _save(model: Any, tok: Any, out_dir: Path) -> Path:
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    return out_dir


def qwen2_pair(root: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """(teacher, student) folders of Qwen2 stand-ins: no BOS, EOS = PAD."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = bpe_tokenizer(root / "qwen2-tokenizer", eos="<|endoftext|>", pad="<|endoftext|>")
    paths = []
    for name, layers in (("teacher", 2), ("student", 1)):
        torch.manual_seed(seed)
        cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                          tie_word_embeddings=True, bos_token_id=None, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
        paths.append(_save(Qwen2ForCausalLM(cfg), tok, root / f"qwen2-{name}"))
    return paths[0], paths[1]


def llama_pair(root: Path, *, seed: int = 0, pad_to: int = 64) -> tuple[Path, Path]:
    """(teacher, student) folders of Llama stand-ins: `<s>` BOS on every prompt; the teacher's embedding matrix
    is padded past the tokenizer to the next multiple of `pad_to` (logit columns no token maps to), as Qwen's
    151,646 tokens sit in 151,936 rows."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = bpe_tokenizer(root / "llama-tokenizer", bos="<s>", eos="</s>", unk="<unk>", add_bos=True)
    paths = []
    padding = (len(tok) // pad_to + 1) * pad_to - len(tok)
    for name, layers, extra in (("teacher", 2, padding), ("student", 1, 0)):
        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=len(tok) + extra, hidden_size=32, intermediate_size=64,
                          num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                          max_position_embeddings=2048, tie_word_embeddings=False,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        paths.append(_save(LlamaForCausalLM(cfg), tok, root / f"llama-{name}"))
    return paths[0], paths[1]


def gpt2_pair(root: Path, *, seed: int = 0, n_positions: int = 256) -> tuple[Path, Path]:
    """(teacher, student) folders of GPT-2 stand-ins with `n_positions` positions (GPT-2 itself: 1,024); BOS = EOS
    = `<|endoftext|>`, no pad token (kidsql pads with EOS)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = bpe_tokenizer(root / "gpt2-tokenizer", bos="<|endoftext|>", eos="<|endoftext|>", unk="<|endoftext|>")
    paths = []
    for name, layers in (("teacher", 2), ("student", 1)):
        torch.manual_seed(seed)
        cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=layers, n_head=4, n_positions=n_positions,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        paths.append(_save(GPT2LMHeadModel(cfg), tok, root / f"gpt2-{name}"))
    return paths[0], paths[1]


PAIRS = {"qwen2": qwen2_pair, "llama": llama_pair, "gpt2": gpt2_pair}
