"""The shared-prefix forward against the plain forward (logits and gradients), and the database-grouped sampler."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from kidsql.distill.forward import logits_at
from kidsql.distill.shared_prefix import MIN_SHARED, DatabaseGroupedSampler, common_prefix_length, shared_prefix_logits

sys.path.insert(0, str(Path(__file__).parent))
from _kid import kid_rewrite  # noqa: E402
from _tiny import MICRO_CONFIG  # noqa: E402


def _model(seed: int = 0):  # noqa: ANN202
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**MICRO_CONFIG, vocab_size=97, pad_token_id=0)).float()


def _batch(prefix: int = 40, rows: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """`rows` sequences = one shared prefix + suffixes of different lengths, right-padded with 0."""
    g = torch.Generator().manual_seed(seed)
    head = torch.randint(3, 97, (prefix,), generator=g)
    lengths = [12, 7, 15, 9, 11][:rows]
    width = prefix + max(lengths)
    ids, attn = torch.zeros(rows, width, dtype=torch.long), torch.zeros(rows, width, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :prefix] = head
        ids[i, prefix:prefix + n] = torch.randint(3, 97, (n,), generator=g)
        attn[i, :prefix + n] = 1
    return ids, attn


def test_common_prefix_length_stops_at_the_first_difference_or_padding() -> None:
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 1, 9]])
    assert common_prefix_length(ids, torch.ones_like(ids)) == 3
    assert common_prefix_length(ids, torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])) == 2
    assert common_prefix_length(ids[:1], None) == 5


def test_shared_logits_and_gradients_equal_the_plain_forward() -> None:
    model = _model()
    ids, attn = _batch()
    positions = torch.arange(39, ids.shape[1] - 1)  # the logits a loss over the suffix reads

    plain = logits_at(model, ids, attn, positions)
    loss_plain = (plain.float().logsumexp(-1) * attn[:, 40:].float()).sum()
    loss_plain.backward()
    grads_plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    shared = shared_prefix_logits(model, ids, attn, positions)
    assert shared is not None and shared.shape == plain.shape
    loss_shared = (shared.float().logsumexp(-1) * attn[:, 40:].float()).sum()
    loss_shared.backward()

    valid = attn[:, 40:].bool()  # padded positions attend differently (masked rows) and are never read
    assert torch.allclose(shared[valid], plain[valid], atol=1e-5)
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, grads_plain[name], atol=1e-5, rtol=1e-4), name


def test_the_prefix_is_cut_to_the_first_position_read() -> None:
    """Logits asked for inside the common prefix must still be right (the prefix is shortened to them)."""
    model = _model()
    ids, attn = _batch(prefix=40)
    positions = torch.arange(30, 45)
    with torch.no_grad():
        plain = logits_at(model, ids, attn, positions)
        shared = shared_prefix_logits(model, ids, attn, positions)
    assert shared is not None and torch.allclose(shared, plain, atol=1e-5)


def test_too_short_a_prefix_or_a_single_row_falls_back() -> None:
    model = _model()
    ids, attn = _batch(prefix=MIN_SHARED - 1)
    assert shared_prefix_logits(model, ids, attn, torch.arange(20, 25)) is None
    ids, attn = _batch(prefix=40)
    assert shared_prefix_logits(model, ids[:1], attn[:1], torch.arange(40, 45)) is None


def test_kid_rewrite_is_the_same_with_a_shared_prefix() -> None:
    model = _model()
    ids, attn = _batch(prefix=40)
    sql = attn.bool().clone()
    sql[:, :40] = False
    kw = dict(alpha=0.4, mask_token_id=1, attention_mask=attn, eos_token_id=2, vocab_size=97)
    plain = kid_rewrite(model, ids, sql, generator=torch.Generator().manual_seed(3), **kw)
    shared = kid_rewrite(model, ids[:4], sql[:4], generator=torch.Generator().manual_seed(3), share_prefix=4,
                                 **{**kw, "attention_mask": attn[:4]})
    plain = tuple(t[:4] for t in kid_rewrite(model, ids[:4], sql[:4], generator=torch.Generator().manual_seed(3),
                                                     **{**kw, "attention_mask": attn[:4]}))
    assert torch.equal(plain[0], shared[0]) and torch.equal(plain[1], shared[1])


@pytest.mark.parametrize("batch", [1, 3, 4])
def test_grouped_sampler_blocks_never_mix_databases_and_cover_every_example(batch: int) -> None:
    groups = ["a"] * 7 + ["b"] * 4 + ["c"] * 1 + ["a"] * 2
    sampler = DatabaseGroupedSampler(groups, batch, seed=5)
    order = list(sampler)
    assert len(order) == len(sampler)
    assert set(order) == set(range(len(groups)))
    for i in range(0, len(order), batch):
        assert len({groups[j] for j in order[i:i + batch]}) == 1
    # top-ups repeat examples of the same group only, and at most batch - 1 of them per group
    extra = Counter(order) - Counter(range(len(groups)))
    assert sum(extra.values()) == len(order) - len(groups) <= 3 * (batch - 1)


def test_grouped_sampler_is_deterministic_per_epoch_and_reshuffles_between_epochs() -> None:
    groups = [str(i % 4) for i in range(64)]
    a, b = DatabaseGroupedSampler(groups, 4, seed=1), DatabaseGroupedSampler(groups, 4, seed=1)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(list(a)) == sorted(first)


def test_blocks_of_different_prefixes_share_within_each_block() -> None:
    """Two databases x 3 questions: each block's own prefix runs once; logits equal the plain forward."""
    model = _model()
    a_ids, a_attn = _batch(prefix=40, rows=3, seed=1)
    b_ids, b_attn = _batch(prefix=40, rows=3, seed=2)
    width = max(a_ids.shape[1], b_ids.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]))  # noqa: E731
    ids, attn = torch.cat([pad(a_ids), pad(b_ids)]), torch.cat([pad(a_attn), pad(b_attn)])
    positions = torch.arange(39, width - 1)
    with torch.no_grad():
        plain = logits_at(model, ids, attn, positions)
        shared = shared_prefix_logits(model, ids, attn, positions, block=3)
        assert shared_prefix_logits(model, ids, attn, positions, block=None) is None  # no prefix common to all 6
        assert shared_prefix_logits(model, ids, attn, positions, block=4) is None  # 6 rows are not blocks of 4
    valid = attn[:, 40:].bool()
    assert shared is not None and torch.allclose(shared[valid], plain[valid], atol=1e-5)
