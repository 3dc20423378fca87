"""kidsql.models: tiny Llamas from scratch, save/reload, LoRA, peft adapters, tokenizer compatibility."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from kidsql.errors import KidsqlError
from kidsql.models import (
    TINY_CONFIGS,
    LoraOptions,
    check_vocab_compatible,
    count_parameters,
    load_model,
    load_tokenizer,
    output_dim,
    save_model,
    shared_vocab_size,
)

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]




def word_tokenizer(words: list[str], *, pad: bool = True) -> PreTrainedTokenizerFast:
    """A WordLevel tokenizer on whitespace: ids are the positions in SPECIALS + words."""
    vocab = {w: i for i, w in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    kwargs = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    if pad:
        kwargs["pad_token"] = "<pad>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


@pytest.fixture(scope="module")
def small_tok() -> PreTrainedTokenizerFast:
    return word_tokenizer("select count ( * ) from where name age singer concert = , 1 2 3".split())


def tiny_yaml(tmp_path: Path, **extra) -> str:
    cfg = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, **extra)
    path = tmp_path / "cfg.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in cfg.items()))
    return f"tiny:{path}"


def logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def llama_param_formula(vocab: int, d: int, ff: int, layers: int) -> int:
    """Brute-force count of a tied-embedding Llama with full multi-head attention and RMSNorm weights."""
    per_layer = 4 * d * d + 3 * d * ff + 2 * d
    return vocab * d + layers * per_layer + d


@pytest.mark.parametrize("name,low,high", [("1m", 0.8e6, 1.5e6), ("4m", 3.0e6, 5.0e6), ("8m", 6.5e6, 10e6)])
def test_tiny_sizes_vocab_and_parameter_count(name, low, high):
    tok = word_tokenizer([f"w{i}" for i in range(4096 - len(SPECIALS))])
    model = load_model(f"tiny:{name}", tok)
    cfg = TINY_CONFIGS[name]
    n = count_parameters(model)
    assert n == llama_param_formula(4096, cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"])
    assert low <= n <= high
    assert model.config.vocab_size == len(tok) == output_dim(model) == 4096
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (1, 2, 0)
    assert model.config.max_position_embeddings >= 1024 + 128
    assert model.dtype == torch.float32


def test_same_seed_same_weights_and_global_rng_untouched(small_tok):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = load_model("tiny:1m", small_tok, seed=7)
    assert torch.equal(torch.rand(3), expected_next)  # building a model must not consume the caller's RNG
    b = load_model("tiny:1m", small_tok, seed=7)
    c = load_model("tiny:1m", small_tok, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["model.embed_tokens.weight"], sc["model.embed_tokens.weight"])


def test_yaml_config_and_bad_specs(tmp_path, small_tok):
    model = load_model(tiny_yaml(tmp_path, max_position_embeddings=64), small_tok)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.max_position_embeddings) == (32, 2, 64)
    assert model.config.vocab_size == len(small_tok)
    with pytest.raises(KidsqlError, match="tiny:1m"):
        load_model("tiny:huge", small_tok)
    with pytest.raises(KidsqlError, match="tokenizer"):
        load_model("tiny:1m")
    with pytest.raises(KidsqlError, match="not found"):
        load_model(str(tmp_path / "missing" / "model"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(KidsqlError, match="bad.json"):
        load_model(f"tiny:{bad}", small_tok)


def test_save_and_reload_identical_logits(tmp_path, small_tok):
    model = load_model(tiny_yaml(tmp_path), small_tok, seed=3)
    out = save_model(model, small_tok, tmp_path / "saved")
    again = load_model(str(out))
    tok = load_tokenizer(out)
    assert tok.get_vocab() == small_tok.get_vocab() and tok.pad_token_id == 0
    ids = small_tok("select count ( * ) from singer")["input_ids"]
    assert torch.equal(logits(model, ids), logits(again, ids))


def test_load_tokenizer_adds_missing_pad(tmp_path):
    tok = word_tokenizer(["a", "b"], pad=False)
    assert tok.pad_token is None
    tok.save_pretrained(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert loaded.pad_token == "</s>" and loaded.pad_token_id == loaded.eos_token_id == 2
    assert loaded.padding_side == "right"
    assert load_tokenizer(tmp_path / "tok", padding_side="left").padding_side == "left"


def test_lora_only_adapters_trainable_with_expected_count(tmp_path, small_tok):
    base = load_model(tiny_yaml(tmp_path), small_tok, seed=0)
    linears = [m for name, m in base.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in name]
    expected = sum(4 * (m.in_features + m.out_features) for m in linears)  # A: r x in, B: out x r
    model = load_model(tiny_yaml(tmp_path), small_tok, seed=0, lora=LoraOptions(r=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert count_parameters(model, trainable_only=True) == expected
    assert count_parameters(model) == count_parameters(base) + expected


def test_peft_adapter_folder_reloads_identical_logits(tmp_path, small_tok):
    model = load_model(tiny_yaml(tmp_path), small_tok, seed=1, lora=LoraOptions(r=4, alpha=8, dropout=0.0))
    with torch.no_grad():  # B starts at zero (adapter = identity); make it matter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.eval()
    ids = small_tok("select name from singer where age = 3")["input_ids"]
    expected = logits(model, ids)
    plain = load_model(tiny_yaml(tmp_path), small_tok, seed=1)
    assert not torch.allclose(expected, logits(plain, ids), atol=1e-3)

    adapter_dir = save_model(model, small_tok, tmp_path / "adapter")
    assert (adapter_dir / "adapter_config.json").is_file() and (adapter_dir / "base").is_dir()
    reloaded = load_model(str(adapter_dir))
    assert torch.equal(logits(reloaded, ids), expected)
    assert count_parameters(reloaded, trainable_only=True) == 0

    merged_dir = save_model(model, small_tok, tmp_path / "merged", merge=True)
    assert not (merged_dir / "adapter_config.json").exists()
    assert torch.allclose(logits(load_model(str(merged_dir)), ids), expected, atol=1e-5)
    # merging a copy must leave the live peft model (mid-training) untouched
    assert torch.equal(logits(model, ids), expected)

    # continuing from an adapter with fresh LoRA starts from the adapted model
    cont = load_model(str(adapter_dir), lora=LoraOptions(r=2, alpha=4, dropout=0.0))
    assert torch.allclose(logits(cont, ids), expected, atol=1e-5)


def test_vocab_mismatch_raises_before_compute(tmp_path):
    tok_a = word_tokenizer("select from where name".split())
    tok_b = word_tokenizer("select from where title".split())  # same size, one different word
    tok_c = word_tokenizer("select from where".split())  # smaller
    m_a = load_model(tiny_yaml(tmp_path), tok_a)
    m_b = load_model(tiny_yaml(tmp_path), tok_b)
    with pytest.raises(KidsqlError, match="vocabularies differ.*same tokenizer"):
        check_vocab_compatible(m_a, m_b, tok_a, tok_b)
    with pytest.raises(KidsqlError, match=f"{len(tok_a)} tokens.*{len(tok_c)}"):
        check_vocab_compatible(m_a, m_b, tok_a, tok_c)
    small_head = load_model(tiny_yaml(tmp_path), tok_c)
    with pytest.raises(KidsqlError, match=f"student model outputs {len(tok_c)} logits"):
        check_vocab_compatible(m_a, small_head, tok_a, tok_a)
    check_vocab_compatible(m_a, load_model(tiny_yaml(tmp_path), tok_a, seed=5), tok_a, tok_a)


def test_shared_vocab_size_ignores_padded_embedding_rows(tmp_path):
    tok = word_tokenizer("select from where name".split())
    student = load_model(tiny_yaml(tmp_path), tok)
    teacher = load_model(tiny_yaml(tmp_path), tok, seed=2)
    teacher.resize_token_embeddings(len(tok) + 8)  # like Qwen: rows beyond the tokenizer
    assert output_dim(teacher) == len(tok) + 8
    check_vocab_compatible(teacher, student, tok, tok)
    assert shared_vocab_size(teacher, student, tok) == len(tok)
    assert shared_vocab_size(student, teacher, tok) == len(tok)


def test_keep_layers_takes_evenly_spaced_layers_with_their_weights(tmp_path: Path) -> None:
    """4 layers -> 2: layers 0 and 3, same weights, a working key/value cache (generation), other layers gone."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from kidsql.models import keep_layers

    torch.manual_seed(0)
    src = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=4,
                                       num_attention_heads=4, pad_token_id=0, eos_token_id=2))
    src.save_pretrained(tmp_path / "teacher")
    out = keep_layers(tmp_path / "teacher", tmp_path / "student", 2)
    small = AutoModelForCausalLM.from_pretrained(str(out))
    assert small.config.num_hidden_layers == 2
    for new, old in [(0, 0), (1, 3)]:
        for (name, a), (_, b) in zip(small.model.layers[new].named_parameters(), src.model.layers[old].named_parameters()):
            assert torch.equal(a, b), (new, name)
    assert torch.equal(small.lm_head.weight, src.lm_head.weight)
    ids = torch.tensor([[5, 9, 11, 3]])
    full = small(ids).logits[0, -1]  # no cache
    cached = small.generate(ids, max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True)
    assert torch.allclose(cached.logits[0][0], full, atol=1e-5)
    assert keep_layers(tmp_path / "teacher", tmp_path / "one", 1) and \
        AutoModelForCausalLM.from_pretrained(str(tmp_path / "one")).config.num_hidden_layers == 1
    with pytest.raises(KidsqlError, match="keep between 1 and 4"):
        keep_layers(tmp_path / "teacher", tmp_path / "bad", 5)


def test_auto_precision_is_one_rule(monkeypatch) -> None:
    """`--bf16 auto` and the `auto` weight dtype both follow kidsql.precision.native_bf16: autocast wherever bf16
    is native; bf16 weights only on such a CUDA device (a CPU keeps float32 weights under autocast)."""
    import torch

    from kidsql import precision

    for native, autocast, weights in ((None, False, torch.float32), ("cpu", True, torch.float32),
                                      ("cuda", True, torch.bfloat16)):
        monkeypatch.setattr(precision, "native_bf16", lambda n=native: n)
        assert precision.auto_bf16_autocast() is autocast
        assert precision.resolve_dtype("auto") == weights and precision.resolve_dtype(None) == weights
    assert precision.resolve_dtype("fp16") == torch.float16
