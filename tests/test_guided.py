"""Execution-guided decoding: which candidate is chosen, how candidates are grouped, and predict/bench use it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from _tiny import PAIRS, write_benchmark
from kidsql.guided import GuidedDecoding, choose

BAD = "SELECT nme FROM singer"


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "s.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE singer (name TEXT, age INTEGER)")
    con.executemany("INSERT INTO singer VALUES (?, ?)", [("Anna", 31), ("Ben", 25)])
    con.commit()
    con.close()
    return path


def test_choose_takes_the_first_candidate_that_runs(db):
    empty, good = "SELECT name FROM singer WHERE age > 90", "SELECT name FROM singer"
    c = choose([BAD, empty, good], db)
    assert (c.sql, c.index, c.tried, c.result.rows) == (empty, 1, 2, [])
    c = choose([BAD, empty, good], db, require_rows=True)
    assert (c.sql, c.index, c.tried, c.result.rows) == (good, 2, 3, [("Anna",), ("Ben",)])
    c = choose([BAD, "DROP TABLE singer", BAD, ""], db)  # none runs: the first, with its own reason
    assert (c.sql, c.index, c.tried) == (BAD, 0, 3) and c.result.error == "OperationalError: no such column: nme"
    assert choose([good], db).index == 0


def test_options_are_checked_and_named():
    from kidsql.errors import KidsqlError

    assert GuidedDecoding(4).generation_kwargs() == {"num_return_sequences": 4, "num_beams": 4, "do_sample": False,
                                                     "temperature": 1.0, "top_p": 1.0}
    assert GuidedDecoding(4, do_sample=True).generation_kwargs()["num_beams"] == 1
    assert [GuidedDecoding(1).describe(), GuidedDecoding(8, require_rows=True).describe()] == ["greedy", "beam 8 +rows"]
    with pytest.raises(KidsqlError, match="num-return-sequences 0"):
        GuidedDecoding(0)
    with pytest.raises(KidsqlError, match="temperature"):
        GuidedDecoding(2, do_sample=True, temperature=0)


# ------------------------------------------------------------------------------------------ candidates


WORDS = "select count ( * ) from where name age singer concert = , 1 2 3 and or".split()
PROMPTS = ["<s> select", "<s> select name from singer where", "<s> count ( * )", "<s> 1 2 3 and or age", "<s> ="]


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>"] + WORDS)}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")


@pytest.fixture(scope="module")
def model(tok, tmp_path_factory):
    from kidsql.models import load_model

    cfg = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    cfg.write_text("hidden_size: 32\nintermediate_size: 48\nnum_hidden_layers: 2\nnum_attention_heads: 4\n"
                   "initializer_range: 0.5\nmax_position_embeddings: 64\n")
    return load_model(f"tiny:{cfg}", tok, seed=0).eval()


def test_beam_candidates_are_grouped_per_prompt_whatever_the_batch(model, tok):
    from kidsql.generate import generate_sql

    n = 3
    batched = generate_sql(model, tok, PROMPTS, max_new_tokens=6, batch_size=2, show_progress=False,
                           num_beams=n, num_return_sequences=n)
    assert len(batched) == n * len(PROMPTS)
    for i, prompt in enumerate(PROMPTS):  # prompt i's candidates at [i * n, (i + 1) * n), as when decoded alone
        alone = generate_sql(model, tok, [prompt], max_new_tokens=6, show_progress=False, num_beams=n,
                             num_return_sequences=n)
        assert batched[i * n:(i + 1) * n] == alone
    greedy = generate_sql(model, tok, PROMPTS, max_new_tokens=6, show_progress=False)
    assert generate_sql(model, tok, PROMPTS, max_new_tokens=6, show_progress=False, num_beams=1,
                        num_return_sequences=1) == greedy
    torch.manual_seed(0)
    sampled = generate_sql(model, tok, PROMPTS, max_new_tokens=6, show_progress=False, do_sample=True,
                           num_return_sequences=4)
    assert len(sampled) == 4 * len(PROMPTS) and len(set(sampled)) > len(PROMPTS)


# -------------------------------------------------------------------------------------- predict, bench


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory, tok) -> tuple[Path, Path]:
    """The `_tiny` benchmark and a random model saved with its tokenizer (the generator is faked below)."""
    from _tiny import load_bench_tokenizer, tiny_llama
    from kidsql.models import save_model

    root = tmp_path_factory.mktemp("guided")
    bench = write_benchmark(root / "bench")
    btok = load_bench_tokenizer(bench)
    return bench, save_model(tiny_llama(btok), btok, root / "model")


@pytest.fixture
def bad_then_gold(monkeypatch):
    """Decoding faked: a failing query, then an empty-result one, then the gold SQL of the prompt's question."""
    import kidsql.generate

    gold = dict(PAIRS)

    def fake(model, tokenizer, prompts, *, num_return_sequences=1, **kwargs):
        out = []
        for p in prompts:
            q = p.rsplit("question : ", 1)[1].split("\n")[0]
            out += [BAD, "SELECT name FROM singer WHERE 0", gold[q]][:num_return_sequences]
        return out

    monkeypatch.setattr(kidsql.generate, "generate_sql", fake)


def test_predict_cli_writes_the_candidate_that_runs(tiny_bench, bad_then_gold, tmp_path):
    from kidsql.cli import main

    bench, model_dir = tiny_bench
    base = ["predict", "--model", str(model_dir), "--data", str(bench), "--limit", "2"]
    assert main([*base, "--out", str(tmp_path / "greedy.sql")]) == 0
    assert (tmp_path / "greedy.sql").read_text().splitlines() == [BAD, BAD]
    assert main([*base, "--out", str(tmp_path / "eg.sql"), "--num-return-sequences", "3"]) == 0
    assert (tmp_path / "eg.sql").read_text().splitlines() == ["SELECT name FROM singer WHERE 0"] * 2
    assert main([*base, "--out", str(tmp_path / "rows.sql"), "--num-return-sequences", "3", "--require-rows"]) == 0
    assert (tmp_path / "rows.sql").read_text().splitlines() == [PAIRS[0][1], PAIRS[1][1]]
    assert main([*base, "--out", str(tmp_path / "x.sql"), "--num-return-sequences", "0"]) == 2


def test_bench_scores_execution_guided_predictions(tiny_bench, bad_then_gold, tmp_path):
    from kidsql.experiments.bench import BenchConfig, _evaluate_model

    bench, model_dir = tiny_bench
    scores = {}
    for n in (1, 3):
        cfg = BenchConfig(out=str(tmp_path / f"b{n}"), eval_limit=None, eval_workers=1, num_return_sequences=n,
                          require_rows=True)
        scores[n] = _evaluate_model(cfg, bench, model_dir, ["dev"], tmp_path / f"b{n}")["dev"]["ex"]
        preds = json.loads((tmp_path / f"b{n}" / "preds_dev.json").read_text())
        assert preds == ([BAD] * 4 if n == 1 else [s for _, s in PAIRS[:4]])
    assert scores == {1: 0.0, 3: 100.0}


def test_bench_setup_check_accepts_old_folders_and_refuses_other_decoding(tmp_path):
    from kidsql.experiments.bench import BenchConfig, check_same_setup
    from kidsql.errors import KidsqlError

    out = tmp_path / "b"
    check_same_setup(BenchConfig(out=str(out)))
    setup = json.loads((out / "bench_setup.json").read_text())
    for key in ("num_return_sequences", "do_sample", "require_rows"):  # a folder made before these options
        del setup[key]
    (out / "bench_setup.json").write_text(json.dumps(setup))
    check_same_setup(BenchConfig(out=str(out)))
    with pytest.raises(KidsqlError, match=r"differs in: num_return_sequences\)"):
        check_same_setup(BenchConfig(out=str(out), num_return_sequences=4))
