"""`kidsql predict` end to end on a hand-built Spider-layout benchmark and a tiny model saved to tmp_path."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from kidsql.cli import main
from kidsql.models import load_model, save_model

QUESTIONS = [
    ("how many singers are there ?", "SELECT count(*) FROM singer"),
    ("list the names of all singers .", "SELECT name FROM singer"),
    ("which singers are from France ?", "SELECT name FROM singer WHERE country = 'France'"),
    ("what is the average age of singers ?", "SELECT avg(age) FROM singer"),
    ("who is the oldest singer ?", "SELECT name FROM singer ORDER BY age DESC LIMIT 1"),
]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run 10-100x slower with several threads on a busy 2-core machine (spin-waiting)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    db = root / "database" / "music" / "music.sqlite"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE singer (singer_id integer PRIMARY KEY, name text, country text, age integer)")
    conn.executemany("INSERT INTO singer VALUES (?, ?, ?, ?)", [(1, "Anna", "France", 31), (2, "Ben", "Spain", 25)])
    conn.commit()
    conn.close()
    cols = ["singer_id", "name", "country", "age"]
    (root / "tables.json").write_text(json.dumps([{
        "db_id": "music", "table_names": ["singer"], "table_names_original": ["singer"],
        "column_names": [[-1, "*"]] + [[0, c.replace("_", " ")] for c in cols],
        "column_names_original": [[-1, "*"]] + [[0, c] for c in cols],
        "column_types": ["text", "number", "text", "text", "number"], "primary_keys": [1], "foreign_keys": [],
    }]))
    (root / "dev.json").write_text(json.dumps([{"db_id": "music", "question": q, "query": s} for q, s in QUESTIONS]))
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A random tiny Llama (large init so outputs vary) and a word tokenizer that prepends <s>, saved together."""
    words = sorted({w for q, s in QUESTIONS for w in (q + " " + s).split()} | {"table", "question", ":", "SQL:"})
    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>"] + words)}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="<pad>")
    cfg = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    cfg.write_text("hidden_size: 32\nintermediate_size: 48\nnum_hidden_layers: 2\nnum_attention_heads: 4\n"
                   "initializer_range: 0.5\n")
    model = load_model(f"tiny:{cfg}", tok, seed=0)
    return save_model(model, tok, tmp_path_factory.mktemp("model") / "tiny")


def predict(model_dir: Path, bench: Path, out: Path, *extra: str) -> int:
    return main(["predict", "--model", str(model_dir), "--data", str(bench), "--out", str(out),
                 "--max-new-tokens", "6", "--batch-size", "2", *extra])


def test_writes_one_line_per_example_aligned_with_limit(model_dir, bench, tmp_path):
    out = tmp_path / "preds.sql"
    assert predict(model_dir, bench, out) == 0
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines[:-1]) == len(QUESTIONS)
    assert all(line.strip() for line in lines[:-1])
    assert len(set(lines[:-1])) > 1  # a real model, not a constant
    limited = tmp_path / "sub" / "first2.sql"
    assert predict(model_dir, bench, limited, "--limit", "2") == 0
    assert limited.read_text(encoding="utf-8").splitlines() == lines[:2]  # batching/sorting keeps line i = example i


def test_refuses_to_overwrite_without_force(model_dir, bench, tmp_path, capsys):
    out = tmp_path / "preds.sql"
    out.write_text("keep me\n")
    assert predict(model_dir, bench, out) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"
    assert predict(model_dir, bench, out, "--force", "--limit", "3") == 0
    assert len(out.read_text().splitlines()) == 3


def test_newlines_flattened_and_empty_predictions_keep_alignment(model_dir, bench, tmp_path, monkeypatch):
    import kidsql.generate

    seen: list[list[str]] = []

    def fake_generate_sql(model, tokenizer, prompts, **kwargs):
        seen.append(prompts)
        return ["SELECT name\nFROM  singer", "", "  SELECT 1  "][: len(prompts)]

    monkeypatch.setattr(kidsql.generate, "generate_sql", fake_generate_sql)
    out = tmp_path / "p.sql"
    assert predict(model_dir, bench, out, "--limit", "3") == 0
    assert out.read_text().splitlines() == ["SELECT name FROM singer", "SELECT", "SELECT 1"]
    from kidsql.prompts import SQL_START

    assert len(seen[0]) == 3 and all(p.endswith(SQL_START) for p in seen[0])
    assert QUESTIONS[1][0] in seen[0][1]


def test_bad_prompt_options_file_is_a_one_line_error(model_dir, bench, tmp_path, capsys):
    broken = tmp_path / "model"
    broken.mkdir()
    for f in model_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "prompt_options.json").write_text(json.dumps({"num_sample_values": 0, "colour": "red"}))
    assert predict(broken, bench, tmp_path / "x.sql") == 2
    err = capsys.readouterr().err
    assert "prompt_options.json" in err and "colour" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.sql").exists()


def test_saved_prompt_options_and_token_budget_shape_the_prompts(model_dir, bench, tmp_path, monkeypatch):
    import kidsql.generate
    from kidsql.models import load_tokenizer

    seen: list[list[str]] = []

    def fake_generate_sql(model, tokenizer, prompts, **kwargs):
        seen.append(prompts)
        return ["SELECT 1"] * len(prompts)

    monkeypatch.setattr(kidsql.generate, "generate_sql", fake_generate_sql)
    assert predict(model_dir, bench, tmp_path / "a.sql") == 0
    default = seen[0]
    assert all("values :" in p for p in default)  # sample values read from the SQLite file

    custom = tmp_path / "model"
    custom.mkdir()
    for f in model_dir.iterdir():
        (custom / f.name).write_bytes(f.read_bytes())
    (custom / "prompt_options.json").write_text(json.dumps({"with_values": False, "max_prompt_tokens": 25}))
    assert predict(custom, bench, tmp_path / "b.sql") == 0
    tok = load_tokenizer(custom)
    assert all("values :" not in p for p in seen[1])
    assert all(len(tok(p)["input_ids"]) <= 25 < len(tok(d)["input_ids"]) for p, d in zip(seen[1], default))
