"""One forward for a batch whose sequences start with the same tokens: the shared prefix runs once.

Text-to-SQL prompts are mostly schema, and every question on one database has the same schema text, so a batch
of questions on one database repeats a few hundred identical tokens per row. When the rows of a batch agree on
their first P tokens, the prefix is run once (batch 1) with a key/value cache, the cache is repeated per row
(`DynamicCache.batch_repeat_interleave`, differentiable) and the B suffixes run against it with position ids
that continue after the prefix. The logits are those of the full forward (up to float rounding; see
tests/test_shared_prefix.py) and gradients flow through both parts, so training, the teacher's forward and
KID's rewrite forward can all use it. `DatabaseGroupedSampler` makes such batches: blocks of questions on one
database, several blocks per batch. Measured speed-ups: benchmarks/prefix_sharing.py and docs/results/.

When not to use it: under DDP/FSDP/DeepSpeed (two forwards of a wrapped model per step are not what those
wrappers expect; the trainer turns sharing off with more than one process), with gradient checkpointing (it
disables the cache), and with dropout (the prefix would get one dropout mask for all rows).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

PREFIX_BLOCK = 4  # questions per database block in a training batch (see DatabaseGroupedSampler)
MIN_SHARED = 16  # below this many shared tokens the second forward costs more than it saves


def common_prefix_length(ids: Tensor, attention_mask: Tensor | None) -> int:
    """Number of leading positions at which every row has the same token and no row is padding."""
    same = (ids == ids[:1]).all(0)
    if attention_mask is not None:
        same &= attention_mask.bool().all(0)
    return int(same.long().cumprod(0).sum())


def shared_prefix_logits(model: Any, ids: Tensor, attention_mask: Tensor | None, positions: Tensor,
                         block: int | None = None) -> Tensor | None:
    """Logits at `positions` ([B, len(positions), V]) with each block's shared prefix run once, or None when the
    batch shares too little (the caller then runs the plain forward).

    `block`: rows come in consecutive blocks of this many that share a prefix (one database each; None: the
    whole batch is one block). The prefix length used is the shortest block's common prefix, cut to
    `positions.min()` (only positions at or after the prefix can be read; the SQL span lies after the prompt).
    """
    from transformers import DynamicCache

    batch, width = ids.shape
    block = block or batch
    if block < 2 or batch % block or positions.numel() == 0:
        return None
    mask = attention_mask if attention_mask is not None else torch.ones_like(ids)
    common = min(common_prefix_length(ids[i:i + block], mask[i:i + block]) for i in range(0, batch, block))
    prefix = min(common, int(positions.min()), width - 1)
    if prefix < MIN_SHARED:
        return None
    cache = DynamicCache()
    model(input_ids=ids[::block, :prefix], use_cache=True, logits_to_keep=1, **{cache_keyword(model): cache})
    cache.batch_repeat_interleave(block)
    return suffix_logits(model, ids, mask, cache, prefix, positions)


def suffix_logits(model: Any, ids: Tensor, attention_mask: Tensor, cache: Any, prefix: int, positions: Tensor,
                  position_ids: Tensor | None = None) -> Tensor:
    """Logits at `positions` (all >= `prefix`) of `ids`, running only `ids[:, prefix:]` against `cache`, which
    holds the keys/values of the first `prefix` positions of every row: position ids continue after the
    prefix (or are `position_ids[:, prefix:]`, full width, when given), `attention_mask` covers the full width."""
    batch, width = ids.shape
    if position_ids is not None:
        pos = position_ids[:, prefix:]
    else:
        pos = torch.arange(prefix, width, device=ids.device).unsqueeze(0).expand(batch, -1)
    out = model(input_ids=ids[:, prefix:], attention_mask=attention_mask, position_ids=pos, use_cache=True,
                logits_to_keep=positions - prefix, **{cache_keyword(model): cache})
    return out.logits


def cache_keyword(model: Any) -> str:
    """`cache` in recent transformers (where `past_key_values` is deprecated), `past_key_values` before."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wrappers take **kwargs
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


class DatabaseGroupedSampler(torch.utils.data.Sampler[int]):
    """Indices in blocks of `block` examples of one group (a database), so each block shares its schema prefix.

    A batch of B examples is B / block consecutive blocks, usually of different databases: one database per
    batch (block = B) shares the most but makes a tiny teacher learn much slower than mixed batches
    (docs/results/cpu-teacher-experiments.md), so the trainer uses blocks of 4. Each epoch: shuffle within each group, cut it into blocks (the last one topped up with the group's
    first examples of this epoch, so a block never mixes databases), then shuffle the blocks. Deterministic for
    (seed, epoch); `set_epoch` is called by the Trainer/Accelerate between epochs.
    """

    def __init__(self, groups: Sequence[Any], block: int, seed: int = 0) -> None:
        self.block, self.seed, self.epoch = max(1, block), seed, 0
        self.members: dict[Any, list[int]] = {}
        for i, g in enumerate(groups):
            self.members.setdefault(g, []).append(i)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        b = self.block
        return sum(-(-len(m) // b) * b for m in self.members.values())

    def __iter__(self) -> Iterator[int]:
        rng = random.Random(f"{self.seed}:{self.epoch}")
        b, blocks = self.block, []
        for key in sorted(self.members, key=str):
            idx = list(self.members[key])
            rng.shuffle(idx)
            top_up = (-len(idx)) % b
            idx += (idx * (top_up // len(idx) + 1))[:top_up]
            blocks += [idx[i:i + b] for i in range(0, len(idx), b)]
        rng.shuffle(blocks)
        return iter([i for blk in blocks for i in blk])
