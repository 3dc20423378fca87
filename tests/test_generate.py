"""kidsql.generate: KV-cache batched decoding equals a naive full-forward greedy loop; EOS, order, sampling."""

from __future__ import annotations

import copy

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from kidsql.generate import generate_ids, generate_sql
from kidsql.models import load_model

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


WORDS = "select count ( * ) from where name age singer concert = , 1 2 3 and or".split()
PROMPTS = ["<s> select", "<s> select name from singer where", "<s> count ( * )", "<s> 1 2 3 and or age", "<s> ="]
STEPS = 12


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")


@pytest.fixture(scope="module")
def model(tok, tmp_path_factory):
    """A random tiny Llama with a large init, so that greedy continuations vary (std 0.02 just repeats)."""
    cfg = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    cfg.write_text("hidden_size: 32\nintermediate_size: 48\nnum_hidden_layers: 2\nnum_attention_heads: 4\n"
                   "initializer_range: 0.5\nmax_position_embeddings: 64\n")
    return load_model(f"tiny:{cfg}", tok, seed=0).eval()


def naive_greedy(model, ids: list[int], steps: int) -> list[int]:
    """Reference: argmax of a full, cache-free forward over the unpadded sequence, one token at a time."""
    ids, out = list(ids), []
    for _ in range(steps):
        with torch.no_grad():
            nxt = int(model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].argmax())
        out.append(nxt)
        ids.append(nxt)
    return out


@pytest.fixture(scope="module")
def reference(model, tok) -> list[list[int]]:
    return [naive_greedy(model, tok(p)["input_ids"], STEPS) for p in PROMPTS]


def left_padded(tok, prompts):
    enc = tok.pad({"input_ids": [tok(p)["input_ids"] for p in prompts]}, padding=True, padding_side="left",
                  return_tensors="pt")
    assert len({len(tok(p)["input_ids"]) for p in prompts}) > 1  # the batch really mixes prompt lengths
    return enc["input_ids"], enc["attention_mask"]


def cut_at(row: list[int], eos: int, pad: int, width: int) -> list[int]:
    row = row[: row.index(eos) + 1] if eos in row else row
    return row + [pad] * (width - len(row))


def test_kv_cache_batch_equals_naive_loop(model, tok, reference):
    assert len({tuple(r) for r in reference}) == len(reference) and all(len(set(r)) > 2 for r in reference)
    never = next(i for i in range(4, len(tok)) if all(i not in r for r in reference))
    ids, mask = left_padded(tok, PROMPTS)
    out = generate_ids(model, ids, mask, max_new_tokens=STEPS, eos_token_id=never, pad_token_id=0)
    assert out.tolist() == reference


def test_model_generation_config_does_not_leak_into_greedy(model, tok, reference):
    """A hub model's generation_config (penalties, n-gram bans) must not alter greedy decoding, and is restored."""
    assert any(r[i] == r[i + 1] for r in reference for i in range(len(r) - 1))  # the ban below would bite
    model.generation_config.no_repeat_ngram_size = 1
    model.generation_config.repetition_penalty = 5.0
    try:
        never = next(i for i in range(4, len(tok)) if all(i not in r for r in reference))
        ids, mask = left_padded(tok, PROMPTS)
        out = generate_ids(model, ids, mask, max_new_tokens=STEPS, eos_token_id=never, pad_token_id=0)
        assert out.tolist() == reference
        assert model.generation_config.no_repeat_ngram_size == 1 and model.generation_config.repetition_penalty == 5.0
    finally:
        model.generation_config.no_repeat_ngram_size = None
        model.generation_config.repetition_penalty = None


def test_peft_wrapped_model_generates_like_its_base(model, tok, reference):
    from peft import get_peft_model

    from kidsql.models import LoraOptions

    wrapped = get_peft_model(copy.deepcopy(model), LoraOptions(r=2, alpha=4, dropout=0.0).to_peft())  # B = 0
    never = next(i for i in range(4, len(tok)) if all(i not in r for r in reference))
    ids, mask = left_padded(tok, PROMPTS)
    out = generate_ids(wrapped, ids, mask, max_new_tokens=STEPS, eos_token_id=never, pad_token_id=0)
    assert out.tolist() == reference


def test_stops_at_eos_and_pads_after(model, tok, reference):
    counts = {t: sum(t in r[1:-1] for r in reference) for t in range(4, len(tok))}
    eos = max(counts, key=lambda t: (0 < counts[t] < len(reference), counts[t]))  # some rows stop, some do not
    ids, mask = left_padded(tok, PROMPTS)
    out = generate_ids(model, ids, mask, max_new_tokens=STEPS, eos_token_id=eos, pad_token_id=0)
    assert out.shape == (len(PROMPTS), STEPS)
    assert out.tolist() == [cut_at(r, eos, 0, STEPS) for r in reference]
    assert any(0 in row for row in out.tolist())


def test_stops_early_when_every_row_finished(model, tok, reference):
    prompts, refs = PROMPTS[:4], reference[:4]
    firsts = {t: max(r.index(t) for r in refs) for t in range(4, len(tok)) if all(t in r for r in refs)}
    assert firsts, "fixture should have a token every greedy continuation reaches"
    eos = min(firsts, key=firsts.get)
    ids, mask = left_padded(tok, prompts)
    out = generate_ids(model, ids, mask, max_new_tokens=STEPS, eos_token_id=eos, pad_token_id=0)
    width = firsts[eos] + 1
    assert width < STEPS and out.shape == (len(prompts), width)
    assert out.tolist() == [cut_at(r, eos, 0, width) for r in refs]


def test_generate_sql_keeps_input_order_and_cuts_at_eos(model, tok, reference):
    prompts = PROMPTS[::-1] + PROMPTS[:2]
    batched = generate_sql(model, tok, prompts, max_new_tokens=STEPS, batch_size=2, show_progress=False)
    single = [generate_sql(model, tok, [p], max_new_tokens=STEPS, batch_size=1, show_progress=False)[0]
              for p in prompts]
    assert batched == single
    by_prompt = dict(zip(PROMPTS, reference))
    expected = [tok.decode(cut_at(by_prompt[p], tok.eos_token_id, 0, 0), skip_special_tokens=True).strip()
                for p in prompts]
    assert batched == expected
    assert len(set(batched)) >= 4
    assert all("</s>" not in s and "<pad>" not in s and s == s.strip() for s in batched)
    assert generate_sql(model, tok, [], show_progress=False) == []


def test_tiny_top_p_sampling_is_greedy_and_training_mode_restored(model, tok, reference):
    ids, mask = left_padded(tok, PROMPTS)
    never = next(i for i in range(4, len(tok)) if all(i not in r for r in reference))
    model.train()
    try:
        out = generate_ids(model, ids, mask, max_new_tokens=STEPS, eos_token_id=never, pad_token_id=0,
                           do_sample=True, temperature=1.0, top_p=1e-6)
        assert model.training
    finally:
        model.eval()
    assert out.tolist() == reference


def test_sampling_is_seeded_and_differs_from_greedy(model, tok, reference):
    ids, mask = left_padded(tok, PROMPTS)
    never = next(i for i in range(4, len(tok)) if all(i not in r for r in reference))
    draws = []
    for _ in range(2):
        torch.manual_seed(11)
        draws.append(generate_ids(model, ids, mask, max_new_tokens=STEPS, eos_token_id=never, pad_token_id=0,
                                  do_sample=True, temperature=2.0).tolist())
    assert draws[0] == draws[1] and draws[0] != reference


def test_overlong_prompt_is_cut_from_the_left(model, tok):
    long_prompt = " ".join(["name"] * 80) + " select"
    with pytest.warns(UserWarning, match="cut from the left"):
        (out,) = generate_sql(model, tok, [long_prompt], max_new_tokens=STEPS, show_progress=False)
    room = model.config.max_position_embeddings - STEPS
    (expected,) = generate_sql(model, tok, [" ".join(["name"] * (room - 1)) + " select"], max_new_tokens=STEPS,
                               show_progress=False)
    assert out == expected
