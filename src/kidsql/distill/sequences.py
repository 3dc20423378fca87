"""Where training sequences come from: gold, teacher-generated, student-generated, and KID's imperfect rewrite.

Every source returns the same layout as `kidsql.distill.batches` (right-padded `input_ids`, `attention_mask`,
`sql_mask`), so the trainer computes one loss whatever the source. Gold needs nothing: it is the batch.

Logit alignment, used throughout: the distribution over token t is read from the logits at position t - 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kidsql.distill.shared_prefix import cache_keyword, shared_prefix_logits, suffix_logits
from kidsql.errors import KidsqlError

# ------------------------------------------------------------------------------- the student's own guesses


@contextmanager
def guessing(model: Any) -> Iterator[None]:
    """The model in eval mode for the block, its train/eval mode restored after: a method's "student's own
    guess" (KID's rewrite, on-policy samples) is its inference-time prediction, so dropout (LoRA's 0.05 in
    real-model runs) must not act on it."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def has_dropout(model: Any) -> bool:
    """Whether the model drops anything in train mode: a `torch.nn.Dropout` with p > 0 (LoRA's among them) or a
    positive `*dropout*` field of its config (Llama's attention dropout is functional, not a module)."""
    if any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules()):
        return True
    config = getattr(model, "config", None)
    fields = config.to_dict() if hasattr(config, "to_dict") else {}
    return any("dropout" in k and isinstance(v, (int, float)) and v > 0 for k, v in fields.items())


# --------------------------------------------------------------------------------------------- KID (imperfect)


def num_to_rewrite(n_sql_tokens: int, alpha: float) -> int:
    """round(alpha * n), rounding halves up (Python's round() would round 0.5 to even: 2.5 -> 2)."""
    return int(math.floor(alpha * n_sql_tokens + 0.5))


def choose_positions(
    eligible: Tensor, k: Tensor, strategy: str, *, entropy: Tensor | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Bool [B, T]: exactly k[b] of the eligible positions of row b, picked by `strategy`.

    random: uniformly at random; uniform: evenly spaced over the row's eligible positions; hard / easy: the
    positions with the highest / lowest `entropy` (ties broken by position, first wins).
    """
    chosen = torch.zeros_like(eligible, dtype=torch.bool)
    if strategy == "uniform":
        for b in range(eligible.shape[0]):
            idx = eligible[b].nonzero().squeeze(1)
            n, kb = len(idx), int(k[b])
            if kb:
                chosen[b, idx[[int((i + 0.5) * n / kb) for i in range(kb)]]] = True
        return chosen
    if strategy == "random":
        scores = torch.rand(eligible.shape, generator=generator, device=eligible.device)
    elif strategy in ("hard", "easy"):
        if entropy is None:
            raise KidsqlError(f"KID strategy {strategy} needs the student's entropy on the gold tokens")
        scores = entropy.float() if strategy == "hard" else -entropy.float()
    else:
        raise KidsqlError(f"KID strategy {strategy!r} unknown; use random, uniform, hard or easy")
    scores = scores.masked_fill(~eligible, float("-inf"))
    rank = scores.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
    return (rank < k[:, None]) & eligible


def entropy(logits: Tensor) -> Tensor:
    """Entropy (float32) of the softmax over the last dimension."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


@torch.no_grad()
def imperfect_sequences(
    student: Any,
    input_ids: Tensor,
    sql_mask: Tensor,
    *,
    alpha: float,
    strategy: str = "random",
    mask_token_id: int,
    rewrite: str = "argmax",
    generator: torch.Generator | None = None,
    attention_mask: Tensor | None = None,
    eos_token_id: int | None = None,
    vocab_size: int | None = None,
    temperature: float = 1.0,
    share_prefix: int | None = None,
    prefix: PromptPrefix | None = None,
    position_ids: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """KID's y_hat: gold SQL with round(alpha * |SQL|) tokens per example rewritten by the student itself.

    1. mask: pick the positions among the SQL tokens (never the prompt; never the final EOS, which only marks the
       end: |SQL| counts the SQL tokens without it) and put `mask_token_id` there;
    2. predict: ONE teacher-forced student forward over (x, masked y), without gradient (this function runs
       under no_grad); the prediction for position t is read from the logits at t - 1 (only the logits at
       those positions are computed, via `logits_to_keep`);
    3. rewrite: put the predictions (argmax, or a sample at `temperature`) into the chosen positions.
    Returns (y_hat ids [B, T], chosen positions [B, T] bool). Every unchosen position keeps its gold token.
    "hard"/"easy" cost one more no-grad forward (the student's entropy on the gold y). `vocab_size` restricts
    predictions to the ids the tokenizer knows (models may pad their output layer); rewrite="none" returns the
    masked sequence (the paper's masking-only ablation). The student's passes run in eval mode (`guessing`):
    the rewrite is its inference-time guess. `share_prefix`: see `logits_at`; `prefix`: the rewrite pass (and the
    entropy pass of hard/easy) runs against this reused prompt prefix (`PromptPrefix`, same logits; its keys and
    values were computed in train mode, so the caller passes it only for a student without dropout);
    `position_ids`: those of a batch laid out by `align_sql` (None: right padding).
    """
    eligible = sql_mask.bool().clone()  # .bool() of a bool tensor is the same tensor: never edit the caller's mask
    if eos_token_id is not None:
        eligible &= input_ids != eos_token_id
    eligible[:, 0] = False  # position 0 has no logits before it to predict from
    k = torch.tensor([num_to_rewrite(int(n), alpha) for n in eligible.sum(1)], device=input_ids.device)

    def logits(ids: Tensor, need: Tensor) -> Tensor:
        with guessing(student):
            if prefix is not None:
                return prefix.logits_at(ids, attention_mask, need)
            return logits_at(student, ids, attention_mask, need, share_prefix=share_prefix, position_ids=position_ids)

    ent = None
    if strategy in ("hard", "easy"):  # the student's entropy on the gold y, at the eligible positions only
        need = eligible[:, 1:].any(0).nonzero().squeeze(1)
        ent = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
        ent[:, need + 1] = entropy(logits(input_ids, need)[..., :vocab_size])
    chosen = choose_positions(eligible, k, strategy, entropy=ent, generator=generator)
    masked = input_ids.masked_fill(chosen, mask_token_id)
    if rewrite == "none" or not chosen.any():
        return masked, chosen
    need = chosen[:, 1:].any(0).nonzero().squeeze(1)  # logit positions t - 1 of the chosen tokens t
    step = logits(masked, need)[..., :vocab_size].float()  # [B, len(need), V]
    if rewrite == "argmax":
        pred_need = step.argmax(-1)
    elif rewrite == "sample":
        probs = torch.softmax(step / temperature, dim=-1).flatten(0, 1)
        pred_need = torch.multinomial(probs, 1, generator=generator).view(step.shape[:2])
    else:
        raise KidsqlError(f"KID rewrite {rewrite!r} unknown; use argmax, sample or none")
    pred = torch.zeros_like(input_ids[:, 1:])
    pred[:, need] = pred_need  # pred[:, t - 1] is the prediction for token t
    y_hat = input_ids.clone()
    y_hat[:, 1:] = torch.where(chosen[:, 1:], pred, input_ids[:, 1:])
    return y_hat, chosen


class PromptPrefix:
    """The student's forward over the leading prompt tokens of a batch, run once and reused by KID's two passes.

    KID runs the student on sequences that differ only inside the SQL: the no-grad rewrite pass over
    (x, masked y), and the training forward over (x, y_hat) stacked with the clean (x, y) (`mle_on="clean"`).
    Their first `length` positions (up to the first SQL token, less one so that every read logit lies after it)
    are the same tokens, so their keys/values are computed once, with gradient, and every pass runs only the
    rest against them. The trainer first re-lays the batch with `align_sql`, so that `length` covers every row's
    whole prompt (with right padding it ends at the batch's shortest prompt) and `position_ids` keeps each row's
    own positions. Logits equal the plain forward's (tests/test_prompt_prefix.py) and gradients reach the prompt
    through the cache. KID/RKD step time (benchmarks/step_time.py): 1.06x with it, 1.55x without; on the CPU
    bench's pair 1.07x and the same peak memory as RKD (the unaligned version fragmented the heap: 1.8 vs
    1.1 GB). Not for DDP/FSDP/DeepSpeed (two forwards of the wrapped model per backward) or gradient
    checkpointing (no cache): the trainer decides. `reuse_prompt_kv=False` turns it off.
    """

    def __init__(self, model: Any, ids: Tensor, attention_mask: Tensor, length: int,
                 position_ids: Tensor | None = None) -> None:
        from transformers import DynamicCache

        self.model, self.length, self.position_ids = model, length, position_ids
        cache = DynamicCache()
        pos = {} if position_ids is None else {"position_ids": position_ids[:, :length]}
        model(input_ids=ids[:, :length], attention_mask=attention_mask[:, :length], use_cache=True,
              logits_to_keep=1, **pos, **{cache_keyword(model): cache})
        layers = getattr(cache, "layers", None)
        self.kv = ([(layer.keys, layer.values) for layer in layers] if layers is not None
                   else list(zip(cache.key_cache, cache.value_cache)))  # transformers < 4.56
        self.prompt = ids[:, :length]

    @staticmethod
    def length_for(sql_mask: Tensor, attention_mask: Tensor, aligned: bool = False) -> int:
        """Positions before every row's first SQL token, less one (the logit of the first SQL token is read
        there); 0 when some row has no SQL. `aligned`: the batch comes from `align_sql` (left-padded prompts,
        explicit position ids), else padding on the left means there is no common prompt (0)."""
        if not bool(sql_mask.any(1).all()):
            return 0
        first = int(sql_mask.float().argmax(1).min())  # the earliest first SQL token of the batch
        if not aligned and not bool(attention_mask[:, :first].bool().all()):
            return 0
        return max(first - 1, 0)

    def logits_at(self, ids: Tensor, attention_mask: Tensor, positions: Tensor) -> Tensor:
        """Logits at `positions` (all >= `length`) of `ids`, whose first `length` tokens must be the prefix's.

        `ids` may hold k copies of the batch stacked (k * batch rows: KID's (x, y_hat) and clean (x, y) in one
        forward when `mle_on="clean"`): the prompt's keys/values are then repeated k times, which keeps one
        prompt forward and lets the gradients of all k copies flow back through it."""
        from transformers import DynamicCache

        if positions.numel() and int(positions.min()) < self.length:
            raise ValueError(f"position {int(positions.min())} lies in the reused prompt prefix ({self.length} tokens)")
        copies, rest = divmod(ids.shape[0], self.prompt.shape[0])
        if rest or not copies or not torch.equal(ids[:, : self.length], self.prompt.repeat(copies, 1)):
            raise ValueError("the sequences do not start with the reused prompt prefix")
        kv = self.kv if copies == 1 else [(k.repeat(copies, 1, 1, 1), v.repeat(copies, 1, 1, 1)) for k, v in self.kv]
        try:
            cache = DynamicCache(ddp_cache_data=kv)
        except TypeError:  # transformers < 4.47
            cache = DynamicCache.from_legacy_cache(tuple(kv))
        pos = None if self.position_ids is None else self.position_ids.repeat(copies, 1)
        if pos is not None and pos.shape != ids.shape:
            raise ValueError(f"sequences of width {ids.shape[1]} against position ids of width {pos.shape[1]}")
        return suffix_logits(self.model, ids, attention_mask, cache, self.length, positions, position_ids=pos)


def _relaid(input_ids: Tensor, attention_mask: Tensor, sql_mask: Tensor, pad_token_id: int
            ) -> tuple[Tensor, Tensor, Tensor, int]:
    """(ids, attention_mask, sql_mask, width of the prompt columns): every row's prompt padded on the left to end
    at one column, its SQL after it, padded on the right. Serves `align_sql` and `split_prompts`."""
    real, sql = attention_mask.bool(), sql_mask.bool() & attention_mask.bool()
    n_prompt, n_sql = (real & ~sql).sum(1).tolist(), sql.sum(1).tolist()
    width_prompt, width = max(n_prompt), max(n_prompt) + max(n_sql)
    ids = input_ids.new_full((len(n_prompt), width), pad_token_id)
    attn = torch.zeros_like(ids, dtype=attention_mask.dtype)
    out_sql = torch.zeros_like(ids, dtype=torch.bool)
    for b, (p, n) in enumerate(zip(n_prompt, n_sql)):
        if not bool(sql[b][real[b]][p:].all()):
            raise ValueError(f"row {b}: SQL tokens must follow all prompt tokens to be aligned")
        ids[b, width_prompt - p: width_prompt + n] = input_ids[b][real[b]]
        attn[b, width_prompt - p: width_prompt + n] = 1
        out_sql[b, width_prompt: width_prompt + n] = True
    return ids, attn, out_sql, width_prompt


def align_sql(input_ids: Tensor, attention_mask: Tensor, sql_mask: Tensor, pad_token_id: int
              ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The batch re-laid so that every row's SQL starts at one column: prompts padded on the left, SQL on the
    right, each row with its own position ids (0, 1, ... along its tokens), so every logit equals the right-padded
    forward's (tests/test_prompt_prefix.py). Why: KID's `PromptPrefix` then holds every row's whole prompt and
    its passes run over the SQL only; on right-padded rows they had to start after the batch's SHORTEST prompt,
    dozens of tokens earlier for the longer ones. Returns (ids, attention_mask, sql_mask, position_ids)."""
    ids, attn, sql, _ = _relaid(input_ids, attention_mask, sql_mask, pad_token_id)
    return ids, attn, sql, (attn.long().cumsum(1) - 1).clamp(min=0)


def logits_at(model: Any, ids: Tensor, attention_mask: Tensor | None, positions: Tensor, *,
              share_prefix: int | None = None, position_ids: Tensor | None = None) -> Tensor:
    """Logits at `positions` only: the output layer is a large share of a small model's forward, and the rewrite
    needs about alpha of the positions. Uses Hugging Face's `logits_to_keep` (index tensor); models without it
    compute every position and are sliced. `share_prefix`: rows come in blocks of this many sharing a prefix,
    which is run once per block (`kidsql.distill.shared_prefix`; same logits; the caller decides when it is safe).
    `position_ids`: those of a batch laid out by `align_sql` (then no prefix sharing)."""
    pos = {} if position_ids is None else {"position_ids": position_ids}
    try:
        if share_prefix and position_ids is None:
            shared = shared_prefix_logits(model, ids, attention_mask, positions, block=share_prefix)
            if shared is not None:
                return shared
        return model(input_ids=ids, attention_mask=attention_mask, logits_to_keep=positions, **pos).logits
    except TypeError:
        return model(input_ids=ids, attention_mask=attention_mask, **pos).logits[:, positions]


# ------------------------------------------------------------------------------- student-generated (on-policy)


def split_prompts(input_ids: Tensor, attention_mask: Tensor, sql_mask: Tensor, pad_token_id: int) -> tuple[Tensor, Tensor]:
    """Left-padded prompts (the non-SQL prefix of each row) for generation: (ids, attention_mask)."""
    ids, attn, _, width = _relaid(input_ids, attention_mask, sql_mask, pad_token_id)
    return ids[:, :width], attn[:, :width]


def join_continuations(
    prompt_ids: Tensor, prompt_attn: Tensor, generated: Tensor, *, eos_token_id: int, pad_token_id: int
) -> dict[str, Tensor]:
    """Right-padded `prompt + generated (up to and including its first EOS)` rows, with the new tokens as SQL."""
    rows, masks = [], []
    for b in range(prompt_ids.shape[0]):
        prompt = prompt_ids[b][prompt_attn[b].bool()]
        gen = generated[b]
        stops = (gen == eos_token_id).nonzero()
        gen = gen[: int(stops[0]) + 1] if len(stops) else gen
        rows.append(torch.cat([prompt, gen]))
        masks.append(torch.cat([torch.zeros_like(prompt, dtype=torch.bool), torch.ones_like(gen, dtype=torch.bool)]))
    width = max(len(r) for r in rows)
    ids = prompt_ids.new_full((len(rows), width), pad_token_id)
    attn, sql = torch.zeros_like(ids), torch.zeros_like(ids, dtype=torch.bool)
    for b, (r, m) in enumerate(zip(rows, masks)):
        ids[b, : len(r)], attn[b, : len(r)], sql[b, : len(r)] = r, 1, m
    return {"input_ids": ids, "attention_mask": attn, "sql_mask": sql}


@torch.no_grad()
def student_generated(model: Any, batch: dict[str, Tensor], gen: Any, *, eos_token_id: int, pad_token_id: int) -> dict[str, Tensor]:
    """The batch's prompts, continued by sampling from the current student (GKD's on-policy sequences).

    `model` is the plain model (the trainer unwraps DDP first: generation must not go through DDP's forward
    hooks). It samples in eval mode (`guessing`: no dropout while sampling), with `gen`'s temperature, top-k and
    top-p (the method's reference values, `kidsql.distill.methods.Method.sampling`).
    """
    from kidsql.generate import generate_ids

    prompt_ids, prompt_attn = split_prompts(batch["input_ids"], batch["attention_mask"], batch["sql_mask"], pad_token_id)
    with guessing(model):
        new = generate_ids(
            model, prompt_ids, prompt_attn, max_new_tokens=gen.max_new_tokens, eos_token_id=eos_token_id,
            pad_token_id=pad_token_id, do_sample=gen.do_sample, temperature=gen.temperature, top_p=gen.top_p,
            top_k=gen.top_k,
        )
    return join_continuations(prompt_ids, prompt_attn, new, eos_token_id=eos_token_id, pad_token_id=pad_token_id)


# ------------------------------------------------------------------------------------------ teacher-generated


def model_fingerprint(spec: str) -> str:
    """Identity of a model for cache keys: the spec, plus every file's name, size and mtime for a folder."""
    path = Path(spec)
    if not path.is_dir():
        return spec
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return spec + "|" + ";".join(f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def teacher_generated_sql(
    teacher: Any, tokenizer: Any, prompts: list[str], gen: Any, *, fingerprint: str, cache_dir: Path
) -> list[str]:
    """The teacher's SQL for every prompt, generated once and cached on disk.

    The cache key is the teacher's fingerprint + the prompts + the generation options, so a retrained teacher,
    other data, or other decoding settings never reuse stale sequences. Sampling is seeded by the caller.
    """
    from dataclasses import asdict

    from kidsql.files import cache_key, write_atomic

    key = cache_key({"teacher": fingerprint, "prompts": prompts, "gen": asdict(gen)}, 24)
    path = Path(cache_dir) / "teacher_sequences" / f"{key}.json"
    if path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if len(cached) == len(prompts):
            return cached
    from kidsql.generate import generate_sql

    sqls = generate_sql(
        teacher, tokenizer, prompts, max_new_tokens=gen.max_new_tokens, batch_size=gen.batch_size,
        do_sample=gen.do_sample, temperature=gen.temperature, top_p=gen.top_p,
    )
    write_atomic(path, json.dumps(sqls, ensure_ascii=False))
    return sqls
