"""KID's imperfect rewrite and the other sequence sources, on fake students whose logits are known."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from kidsql.distill import sequences as seqs
from _kid import kid_rewrite

from kidsql.distill.sequences import (
    choose_positions,
    entropy as entropy_of,
    join_continuations,
    num_to_rewrite,
    split_prompts,
)

V, MASK, EOS, PAD = 50, 1, 2, 0


class PositionStudent(torch.nn.Module):
    """Logits at position t put all mass on token (7 t + 3) mod V, whatever the input: checks the shift."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))  # a parameter that would carry a graph if grad were on
        self.seen: list[torch.Tensor] = []
        self.grad_enabled: list[bool] = []

    @staticmethod
    def token_at(t: int) -> int:
        return (7 * t + 3) % V

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SimpleNamespace:
        self.seen.append(input_ids.clone())
        self.grad_enabled.append(torch.is_grad_enabled())
        b, t = input_ids.shape
        logits = torch.zeros(b, t, V)
        for pos in range(t):
            logits[:, pos, self.token_at(pos)] = 20.0
        return SimpleNamespace(logits=logits * self.w)


class ProfileStudent(torch.nn.Module):
    """Logits at position t: scale[t] on token 5, 0 elsewhere -> the entropy falls as scale[t] grows."""

    def __init__(self, scale: list[float]) -> None:
        super().__init__()
        self.scale = torch.tensor(scale)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SimpleNamespace:
        b, t = input_ids.shape
        logits = torch.zeros(b, t, V)
        logits[:, :, 5] = self.scale[:t]
        return SimpleNamespace(logits=logits)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two rows: prompt (4 / 3 tokens), SQL (10 / 6 tokens incl. EOS), right padding."""
    ids = torch.tensor([
        [9, 10, 11, 12, 20, 21, 22, 23, 24, 25, 26, 27, 28, EOS],
        [9, 10, 11, 30, 31, 32, 33, 34, EOS, PAD, PAD, PAD, PAD, PAD],
    ])
    sql = torch.zeros_like(ids, dtype=torch.bool)
    sql[0, 4:14] = True
    sql[1, 3:9] = True
    return ids, sql


@pytest.mark.parametrize("n, alpha, expected", [(10, 0.2, 2), (5, 0.3, 2), (5, 0.5, 3), (3, 0.2, 1), (2, 0.2, 0), (9, 0.0, 0), (9, 1.0, 9)])
def test_num_to_rewrite_rounds_half_up(n: int, alpha: float, expected: int) -> None:
    assert num_to_rewrite(n, alpha) == expected


def test_imperfect_rewrites_exactly_k_sql_positions_from_shifted_logits_without_grad() -> None:
    ids, sql = _batch()
    student = PositionStudent()
    gen = torch.Generator().manual_seed(3)
    y_hat, chosen = kid_rewrite(student, ids, sql, alpha=0.3, strategy="random", mask_token_id=MASK,
                                        generator=gen, eos_token_id=EOS)
    # |SQL| excludes the EOS: 9 and 5 tokens -> round(2.7) = 3 and round(1.5) = 2 positions.
    assert chosen.sum(1).tolist() == [3, 2]
    assert not (chosen & ~sql).any(), "a prompt position was chosen"
    assert not chosen[ids == EOS].any(), "the EOS was chosen"
    assert torch.equal(y_hat[~chosen], ids[~chosen]), "an unchosen position changed"
    for b, t in chosen.nonzero().tolist():
        assert y_hat[b, t] == PositionStudent.token_at(t - 1), "prediction for t must come from the logits at t-1"
    # the predicting pass saw the mask token exactly at the chosen positions, and ran without grad
    assert len(student.seen) == 1
    assert torch.equal(student.seen[0], ids.masked_fill(chosen, MASK))
    assert student.grad_enabled == [False]
    assert not y_hat.requires_grad


def test_imperfect_on_a_real_model_builds_no_graph() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=V, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, max_position_embeddings=32))
    ids, sql = _batch()
    y_hat, chosen = kid_rewrite(model, ids, sql, alpha=0.5, strategy="random", mask_token_id=MASK,
                                        generator=torch.Generator().manual_seed(0), eos_token_id=EOS,
                                        attention_mask=(ids != PAD).long())
    assert y_hat.grad_fn is None and not y_hat.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert chosen.sum(1).tolist() == [num_to_rewrite(9, 0.5), num_to_rewrite(5, 0.5)]


def test_logits_to_keep_path_equals_the_full_forward() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=V, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, max_position_embeddings=32))

    class NoKeep(torch.nn.Module):  # the same model without `logits_to_keep`: the full-logits fallback
        def forward(self, input_ids, attention_mask=None):  # noqa: ANN001, ANN201
            return model(input_ids=input_ids, attention_mask=attention_mask)

    ids, sql = _batch()
    kw = dict(alpha=0.5, strategy="random", mask_token_id=MASK, eos_token_id=EOS, attention_mask=(ids != PAD).long())
    fast = kid_rewrite(model, ids, sql, generator=torch.Generator().manual_seed(4), **kw)
    full = kid_rewrite(NoKeep(), ids, sql, generator=torch.Generator().manual_seed(4), **kw)
    assert torch.equal(fast[1], full[1]) and torch.equal(fast[0], full[0])
    assert not torch.equal(fast[0], ids)


def test_alpha_one_rewrites_every_sql_token_but_the_eos() -> None:
    ids, sql = _batch()
    _, chosen = kid_rewrite(PositionStudent(), ids, sql, alpha=1.0, mask_token_id=MASK, eos_token_id=EOS)
    assert torch.equal(chosen, sql & (ids != EOS))


def test_random_strategy_is_seeded_and_varies_with_the_seed() -> None:
    ids, sql = _batch()
    eligible = sql & (ids != EOS)
    k = torch.tensor([3, 2])
    picks = [choose_positions(eligible, k, "random", generator=torch.Generator().manual_seed(s)) for s in range(6)]
    again = choose_positions(eligible, k, "random", generator=torch.Generator().manual_seed(0))
    assert torch.equal(picks[0], again)
    assert len({tuple(p.flatten().tolist()) for p in picks}) > 1
    assert all(p.sum(1).tolist() == [3, 2] and not (p & ~eligible).any() for p in picks)


def test_uniform_strategy_is_evenly_spaced() -> None:
    eligible = torch.zeros(1, 14, dtype=torch.bool)
    eligible[0, 4:14] = True  # 10 eligible positions: 4..13
    chosen = choose_positions(eligible, torch.tensor([2]), "uniform")
    # indices floor((i + 0.5) * 10 / 2) = 2, 7 of the eligible list -> positions 6 and 11
    assert chosen.nonzero()[:, 1].tolist() == [6, 11]
    chosen = choose_positions(eligible, torch.tensor([5]), "uniform")
    assert chosen.nonzero()[:, 1].tolist() == [5, 7, 9, 11, 13]


@pytest.mark.parametrize("strategy", ["hard", "easy"])
def test_hard_and_easy_pick_the_extreme_entropy_positions(strategy: str) -> None:
    ids, sql = _batch()
    ids, sql = ids[:1], sql[:1]
    scale = [3.0, 0.5, 9.0, 1.0, 6.0, 0.0, 4.0, 2.0, 8.0, 5.0, 7.0, 0.2, 3.5, 1.5]
    student = ProfileStudent(scale)
    _, chosen = kid_rewrite(student, ids, sql, alpha=0.3, strategy=strategy, mask_token_id=MASK, eos_token_id=EOS)

    def entropy(s: float) -> float:  # brute force: one logit s, V - 1 logits 0
        z = math.exp(s) + (V - 1)
        probs = [math.exp(s) / z] + [1 / z] * (V - 1)
        return -sum(p * math.log(p) for p in probs)

    eligible = [t for t in range(14) if sql[0, t] and ids[0, t] != EOS]
    by_entropy = sorted(eligible, key=lambda t: entropy(scale[t - 1]), reverse=(strategy == "hard"))
    assert sorted(chosen.nonzero()[:, 1].tolist()) == sorted(by_entropy[:3])


def test_entropy_matches_brute_force() -> None:
    """The shift (token t's entropy from the logits at t - 1) is checked by the hard/easy test above."""
    logits = torch.randn(1, 4, 6, dtype=torch.float64)
    ent = entropy_of(logits)
    for t in range(4):
        p = torch.softmax(logits[0, t], -1)
        assert ent[0, t].item() == pytest.approx(-(p * p.log()).sum().item(), rel=1e-6)


def test_sample_rewrite_follows_a_peaked_distribution_and_none_keeps_the_mask() -> None:
    ids, sql = _batch()
    y_hat, chosen = kid_rewrite(PositionStudent(), ids, sql, alpha=0.5, rewrite="sample", mask_token_id=MASK,
                                        generator=torch.Generator().manual_seed(1), eos_token_id=EOS)
    for b, t in chosen.nonzero().tolist():
        assert y_hat[b, t] == PositionStudent.token_at(t - 1)
    masked, chosen = kid_rewrite(PositionStudent(), ids, sql, alpha=0.5, rewrite="none", mask_token_id=MASK,
                                         generator=torch.Generator().manual_seed(1), eos_token_id=EOS)
    assert (masked[chosen] == MASK).all() and chosen.any()


def test_split_prompts_and_join_continuations_round_trip() -> None:
    ids, sql = _batch()
    attn = (ids != PAD).long()
    p_ids, p_attn = split_prompts(ids, attn, sql, PAD)
    assert p_ids.tolist() == [[9, 10, 11, 12], [PAD, 9, 10, 11]]
    assert p_attn.tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]
    generated = torch.tensor([[40, 41, EOS, PAD], [42, 43, 44, 45]])  # row 1 never stops
    out = join_continuations(p_ids, p_attn, generated, eos_token_id=EOS, pad_token_id=PAD)
    assert out["input_ids"].tolist() == [[9, 10, 11, 12, 40, 41, EOS], [9, 10, 11, 42, 43, 44, 45]]
    assert out["sql_mask"].long().tolist() == [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]]
    assert out["attention_mask"].tolist() == [[1] * 7, [1] * 7]


def test_teacher_sequences_are_generated_once_and_keyed_by_teacher_and_options(tmp_path, monkeypatch) -> None:
    from kidsql.distill.methods import GenerationOptions

    calls: list[list[str]] = []

    def fake_generate_sql(model, tokenizer, prompts, **kw):  # noqa: ANN001, ANN003
        calls.append(list(prompts))
        return [f"SELECT {len(p)}" for p in prompts]

    import kidsql.generate

    monkeypatch.setattr(kidsql.generate, "generate_sql", fake_generate_sql)
    gen = GenerationOptions(do_sample=False)
    prompts = ["a", "bb", "ccc"]
    first = seqs.teacher_generated_sql(None, None, prompts, gen, fingerprint="t1", cache_dir=tmp_path)
    second = seqs.teacher_generated_sql(None, None, prompts, gen, fingerprint="t1", cache_dir=tmp_path)
    assert first == second == ["SELECT 1", "SELECT 2", "SELECT 3"]
    assert len(calls) == 1, "the second call must read the cache"
    seqs.teacher_generated_sql(None, None, prompts, gen, fingerprint="t2", cache_dir=tmp_path)
    seqs.teacher_generated_sql(None, None, prompts, GenerationOptions(do_sample=False, max_new_tokens=7),
                               fingerprint="t1", cache_dir=tmp_path)
    assert len(calls) == 3, "another teacher or other options must not reuse the cache"
    files = list((tmp_path / "teacher_sequences").glob("*.json"))
    assert len(files) == 3 and json.loads(files[0].read_text())


def test_model_fingerprint_changes_when_a_file_changes(tmp_path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"abc")
    before = seqs.model_fingerprint(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"abcd")
    assert seqs.model_fingerprint(str(tmp_path)) != before
    assert seqs.model_fingerprint("tiny:1m") == "tiny:1m"


def test_imperfect_sequences_leave_the_callers_sql_mask_alone() -> None:
    """Regression: `.bool()` of a bool mask is the same tensor, and the EOS/position-0 exclusions were written
    into the trainer's `sql_mask`, so KID's losses silently skipped the EOS and students never learnt to stop
    (KID with alpha 0 scored 15 EX where RKD, the same loss, scored 45)."""
    ids = torch.tensor([[5, 6, 7, 8, 9, EOS]])
    sql = torch.tensor([[False, False, True, True, True, True]])
    before = sql.clone()
    kid_rewrite(PositionStudent(), ids, sql, alpha=0.5, mask_token_id=MASK, eos_token_id=EOS)
    assert torch.equal(sql, before)
