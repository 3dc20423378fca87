"""Teacher-logit cache: the teacher's top-k log-probabilities at every SQL position of the gold training data.

On gold sequences (FKD, RKD, the gold batches of ImitKD and GKD) the teacher sees the same tokens in every run,
so its forward pass is the same in every seed and every method of a bench. The cache runs it once, keeps the
k most likely entries and the exact log-mass of the rest at each SQL position (`divergences.teacher_topk`), stores
them on disk and serves them to `divergences.topk_divergence` afterwards: the training step then has no teacher
forward at all, and the teacher need not stay in memory.

Key: the teacher's fingerprint (spec + its files' names, sizes and mtimes), the encoded features themselves
(token ids and SQL masks: they hold the data, the prompt options, the tokenizer and the length budgets exactly),
k, the temperature and the vocabulary size. Anything else changes the file name, so a stale cache is never read.

Layout (`<cache_dir>/teacher_topk/<key>.pt`, written atomically): the SQL positions of all examples, example after
example, in order: `ids` [N, k] int32, `log_probs` [N, k + 1] float32, and `offsets` [examples + 1] int64, the
first row of each example. About (8k + 4) bytes per SQL token: 2.8 MB per 10,000 SQL tokens at k = 32.

Numerics: the cache is computed in float32 without autocast, so under bf16 training the cached teacher is the
float32 teacher, where live forwards would run it under bf16 autocast.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kidsql.distill.divergences import teacher_topk
from kidsql.errors import KidsqlError
from kidsql.files import hex_digest, write_atomic

CACHE_VERSION = 1


@dataclass
class TeacherTopK:
    """Cached teacher rows: row `offsets[i] + j` is the j-th SQL position (in order) of example i."""

    ids: Tensor
    log_probs: Tensor
    offsets: Tensor

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])

    def targets(self, index: Tensor, kl_mask: Tensor) -> tuple[Tensor, Tensor]:
        """(ids [B, T, k], log-probs [B, T, k + 1]) for a batch of examples `index` [B] whose SQL positions are
        `kl_mask` [B, T] (bool, position t predicts token t + 1); zeros elsewhere (never read)."""
        index = index.to("cpu", torch.long)
        counts = kl_mask.sum(1).to("cpu")
        starts, ends = self.offsets[index], self.offsets[index + 1]
        if not torch.equal(ends - starts, counts):
            bad = int((ends - starts != counts).nonzero()[0, 0])
            raise KidsqlError(
                f"teacher cache: example {int(index[bad])} has {int(ends[bad] - starts[bad])} cached SQL positions but "
                f"the batch has {int(counts[bad])}; the cache does not belong to these features (delete it)"
            )
        rows = torch.cat([torch.arange(int(s), int(e)) for s, e in zip(starts, ends)])
        shape = tuple(kl_mask.shape)
        ids = torch.zeros((*shape, self.k), dtype=torch.long, device=kl_mask.device)
        log_probs = torch.zeros((*shape, self.k + 1), dtype=self.log_probs.dtype, device=kl_mask.device)
        ids[kl_mask] = self.ids[rows].to(kl_mask.device, torch.long)
        log_probs[kl_mask] = self.log_probs[rows].to(kl_mask.device)
        return ids, log_probs


def cache_key(*, fingerprint: str, features: Sequence[dict[str, list[int]]], k: int, temperature: float,
              vocab_size: int) -> str:
    """The file name's hash: teacher, features (data, prompts, tokenizer, budgets), k, temperature, vocabulary."""
    head = json.dumps({"v": CACHE_VERSION, "teacher": fingerprint, "k": k, "temperature": float(temperature),
                       "vocab": vocab_size, "n": len(features)}, sort_keys=True)
    rows = (json.dumps([f["input_ids"], f["sql_mask"]], separators=(",", ":")) for f in features)
    return hex_digest(itertools.chain([head], rows), 24)


@torch.no_grad()
def compute_teacher_topk(teacher: Any, features: Sequence[dict[str, list[int]]], *, k: int, temperature: float,
                         vocab_size: int, pad_token_id: int, batch_size: int = 16) -> TeacherTopK:
    """Run the teacher over every feature once (logits at the SQL positions only) and keep its top k + remainder."""
    from kidsql.distill.batches import SqlCollator
    from kidsql.distill.forward import logits_at

    collate = SqlCollator(pad_token_id)
    device = next(teacher.parameters()).device
    was_training = teacher.training
    teacher.eval()
    ids_parts, lp_parts, counts = [], [], []
    try:
        for start in range(0, len(features), batch_size):
            batch = collate(list(features[start : start + batch_size]))
            kl = batch["sql_mask"][:, 1:].to(device)
            keep = kl.any(0).nonzero().squeeze(1)
            logits = logits_at(teacher, batch["input_ids"].to(device), batch["attention_mask"].to(device), keep)
            ids, log_probs = teacher_topk(logits[..., :vocab_size].float(), k, temperature=temperature)
            mask = kl[:, keep]
            ids_parts.append(ids[mask].cpu())
            lp_parts.append(log_probs[mask].float().cpu())
            counts.append(kl.sum(1).cpu())
    finally:
        teacher.train(was_training)
    offsets = torch.zeros(len(features) + 1, dtype=torch.long)
    offsets[1:] = torch.cat(counts).cumsum(0)
    return TeacherTopK(torch.cat(ids_parts), torch.cat(lp_parts), offsets)


def save_teacher_topk(cache: TeacherTopK, path: Path) -> Path:
    """Write atomically (temp file + rename): a killed run never leaves half a cache."""
    data = {"version": CACHE_VERSION, "ids": cache.ids, "log_probs": cache.log_probs, "offsets": cache.offsets}
    return write_atomic(path, lambda fh: torch.save(data, fh))


def load_teacher_topk(path: Path) -> TeacherTopK | None:
    """The cache at `path`, or None when it is missing or unreadable (then it is computed again)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return None
    return TeacherTopK(data["ids"], data["log_probs"], data["offsets"])


def cached_teacher_topk(teacher: Any, features: Sequence[dict[str, list[int]]], *, fingerprint: str, k: int,
                        temperature: float, vocab_size: int, pad_token_id: int, cache_dir: Path,
                        batch_size: int = 16) -> tuple[TeacherTopK, bool]:
    """(the cache for these features, whether it was read from disk): read it, or compute and store it.

    Several processes: the caller wraps this in `main_process_first()`, so one process computes and writes and
    the others read the file.
    """
    if k < 1 or k > vocab_size:
        raise KidsqlError(f"teacher_cache_topk {k}: must lie in [1, {vocab_size}] (the shared vocabulary); 0 turns the cache off")
    key = cache_key(fingerprint=fingerprint, features=features, k=k, temperature=temperature, vocab_size=vocab_size)
    path = Path(cache_dir) / "teacher_topk" / f"{key}.pt"
    found = load_teacher_topk(path)
    if found is not None and int(found.offsets.numel()) == len(features) + 1 and found.k == k:
        return found, True
    cache = compute_teacher_topk(teacher, features, k=k, temperature=temperature, vocab_size=vocab_size,
                                 pad_token_id=pad_token_id, batch_size=batch_size)
    save_teacher_topk(cache, path)
    return cache, False
