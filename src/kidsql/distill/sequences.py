"""Where a training step's sequences come from: gold, teacher-generated, the student's own samples (on-policy),
and KID's imperfect rewrite. Each source is a function registered by name in `SOURCES` and owns its branch:
it returns a `Sequences` (the rows, where each loss term reads them, and the student's forward over them), so
the trainer computes one loss whatever the source. A method names its source (`Method.sequences`); on-policy
batches replace it on a `Method.student_fraction` of the steps.

Logit alignment, used throughout: the distribution over token t is read from the logits at position t - 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kidsql.distill.forward import Guess, StudentForward, guessing, relaid
from kidsql.errors import KidsqlError


@dataclass
class Sequences:
    """What one training step learns from. Masks are [B, T] bool over `ids`' positions."""

    ids: Tensor  # the rows the divergence compares on: y (gold, teacher's, student's) or KID's y_hat
    attention_mask: Tensor
    kl_mask: Tensor  # the tokens whose next-token distributions the divergence compares
    forward: StudentForward  # the student's logits over these rows (and a stacked clean copy)
    mle_ids: Tensor | None = None  # the rows whose tokens the MLE term predicts (None: no MLE term)
    mle_mask: Tensor | None = None
    stacked_clean: bool = False  # the MLE term reads its own forward over mle_ids, stacked with ids in one pass
    gold: bool = False  # the dataset's own rows, as the teacher-logit cache holds them
    stats: dict[str, float] = field(default_factory=dict)  # logged per step (KID's rewrite)


@dataclass
class SourceContext:
    """What the sources need from the trainer, fixed for a run."""

    method: Any  # kidsql.distill.methods.Method
    accelerator: Any
    generation: Any  # GenerationOptions of the on-policy samples
    eos_token_id: int
    pad_token_id: int
    mask_token_id: int | None
    vocab_size: int | None
    share_prefix: int | None  # rows come in blocks this long that share their schema prefix
    reuse_prompt: bool  # KID's passes may share one prompt forward (one process, no checkpointing)
    guess_reuses_prompt: bool  # ... and the rewrite's guess too (the student has no dropout)

    def forward(self, model: Any, ids: Tensor, attention_mask: Tensor, sql_mask: Tensor,
                reuse_prompt: bool = False) -> StudentForward:
        return StudentForward(model, ids, attention_mask, sql_mask, pad_token_id=self.pad_token_id,
                              share_prefix=self.share_prefix, reuse_prompt=reuse_prompt and self.reuse_prompt,
                              guess_reuses_prompt=self.guess_reuses_prompt)


Source = Callable[[SourceContext, Any, dict[str, Tensor], int], Sequences]
SOURCES: dict[str, Source] = {}


def source(name: str) -> Callable[[Source], Source]:
    """Registers a sequence source under `name` (what `Method.sequences` names)."""

    def register(fn: Source) -> Source:
        SOURCES[name] = fn
        return fn

    return register


@source("gold")
def gold(ctx: SourceContext, model: Any, inputs: dict[str, Tensor], seed: int) -> Sequences:
    """The dataset's rows: the divergence and the MLE term both on the SQL tokens."""
    ids, attn, sql = inputs["input_ids"], inputs["attention_mask"], inputs["sql_mask"].bool()
    return Sequences(ids, attn, kl_mask=sql, forward=ctx.forward(model, ids, attn, sql), mle_ids=ids, mle_mask=sql,
                     gold=True)


@source("teacher")
def teacher_generated(ctx: SourceContext, model: Any, inputs: dict[str, Tensor], seed: int) -> Sequences:
    """The teacher's SQL, which replaced the gold in the dataset before training (`teacher_generated_sql`)."""
    return replace(gold(ctx, model, inputs, seed), gold=False)


@source("on-policy")
def on_policy(ctx: SourceContext, model: Any, inputs: dict[str, Tensor], seed: int) -> Sequences:
    """The batch's prompts continued by the current student (GKD's on-policy rows); no MLE term on them."""
    from kidsql.distributed import unwrap_model_for_generation

    with unwrap_model_for_generation(model, ctx.accelerator) as plain:  # ZeRO-3: gathered once, as TRL
        s = student_generated(plain, inputs, ctx.generation, eos_token_id=ctx.eos_token_id,
                              pad_token_id=ctx.pad_token_id)
    ids, attn, sql = s["input_ids"], s["attention_mask"], s["sql_mask"]
    return Sequences(ids, attn, kl_mask=sql, forward=ctx.forward(model, ids, attn, sql))


@source("imperfect")
def imperfect(ctx: SourceContext, model: Any, inputs: dict[str, Tensor], seed: int) -> Sequences:
    """KID: the gold SQL with round(alpha |y|) tokens masked and rewritten by the student's own guess (y_hat);
    the divergence on y_hat, the MLE term on the clean y (or on y_hat's forward: `mle_on="imperfect"`)."""
    o, ids, attn, sql = ctx.method.imperfect, inputs["input_ids"], inputs["attention_mask"], inputs["sql_mask"].bool()
    gen = torch.Generator(device=ids.device).manual_seed(seed + ctx.accelerator.process_index)
    clean = o.mle_on == "clean" and ctx.method.mle_weight > 0
    # two student passes share one prompt forward: the guess and the training forward, or (masking only with
    # the clean MLE term) the stacked (x, y_hat) + (x, y) training forward
    fwd = ctx.forward(model, ids, attn, sql, reuse_prompt=o.rewrite != "none" or clean)
    ids, attn, sql = fwd.ids, fwd.attention_mask, fwd.sql_mask
    with fwd.guesser(ctx.accelerator, gather=o.rewrite != "none") as guess:
        y_hat, chosen = imperfect_sequences(guess, ids, sql, o, mask_token_id=ctx.mask_token_id, generator=gen,
                                            eos_token_id=ctx.eos_token_id, vocab_size=ctx.vocab_size)
    n_sql = max(int(sql.sum()), 1)
    stats = {"kid_rewritten": int(chosen.sum()) / n_sql,
             "kid_changed": float((y_hat != ids)[chosen].float().mean()) if chosen.any() else 0.0}
    return Sequences(y_hat, attn, kl_mask=sql if o.kl_positions == "all" else chosen, forward=fwd, mle_ids=ids,
                     mle_mask=sql, stacked_clean=clean, stats=stats)


# --------------------------------------------------------------------------------------------- KID (imperfect)


def num_to_rewrite(n_sql_tokens: Tensor | int, alpha: float) -> Tensor:
    """round(alpha * n) of each row's n, rounding halves up (Python's round() would round 0.5 to even: 2.5 -> 2);
    in float64, as Python computes alpha * n."""
    return torch.floor(torch.as_tensor(n_sql_tokens).double() * alpha + 0.5).long()


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
def imperfect_sequences(guess: Guess, input_ids: Tensor, sql_mask: Tensor, options: Any, *, mask_token_id: int,
                        generator: torch.Generator | None = None, eos_token_id: int | None = None,
                        vocab_size: int | None = None) -> tuple[Tensor, Tensor]:
    """KID's y_hat: gold SQL with round(alpha * |SQL|) tokens per example rewritten by the student itself.

    1. mask: pick the positions among the SQL tokens (never the prompt; never the final EOS, which only marks the
       end: |SQL| counts the SQL tokens without it) and put `mask_token_id` there;
    2. predict: ONE teacher-forced pass of the student over (x, masked y), `guess` (its eval-mode logits at the
       chosen positions, no gradient; `kidsql.distill.forward.student_guess`); the prediction for position t is
       read from the logits at t - 1;
    3. rewrite: put the predictions (argmax, or a sample at `temperature`) into the chosen positions.
    `options`: `ImperfectOptions` (alpha, strategy, rewrite, temperature). Returns (y_hat ids [B, T], chosen
    positions [B, T] bool); every unchosen position keeps its gold token. "hard"/"easy" cost one more pass (the
    student's entropy on the gold y). `vocab_size` restricts predictions to the ids the tokenizer knows (models
    may pad their output layer); rewrite="none" returns the masked sequence (the paper's masking-only ablation).
    """
    eligible = sql_mask.bool().clone()  # .bool() of a bool tensor is the same tensor: never edit the caller's mask
    if eos_token_id is not None:
        eligible &= input_ids != eos_token_id
    eligible[:, 0] = False  # position 0 has no logits before it to predict from
    k = num_to_rewrite(eligible.sum(1), options.alpha)
    ent = None
    if options.strategy in ("hard", "easy"):  # the student's entropy on the gold y, at the eligible positions only
        need = eligible[:, 1:].any(0).nonzero().squeeze(1)
        ent = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
        ent[:, need + 1] = entropy(guess(input_ids, need)[..., :vocab_size])
    chosen = choose_positions(eligible, k, options.strategy, entropy=ent, generator=generator)
    masked = input_ids.masked_fill(chosen, mask_token_id)
    if options.rewrite == "none" or not chosen.any():
        return masked, chosen
    need = chosen[:, 1:].any(0).nonzero().squeeze(1)  # logit positions t - 1 of the chosen tokens t
    step = guess(masked, need)[..., :vocab_size].float()  # [B, len(need), V]
    if options.rewrite == "argmax":
        pred_need = step.argmax(-1)
    elif options.rewrite == "sample":
        probs = torch.softmax(step / options.temperature, dim=-1).flatten(0, 1)
        pred_need = torch.multinomial(probs, 1, generator=generator).view(step.shape[:2])
    else:
        raise KidsqlError(f"KID rewrite {options.rewrite!r} unknown; use argmax, sample or none")
    pred = torch.zeros_like(input_ids[:, 1:])
    pred[:, need] = pred_need  # pred[:, t - 1] is the prediction for token t
    y_hat = input_ids.clone()
    y_hat[:, 1:] = torch.where(chosen[:, 1:], pred, input_ids[:, 1:])
    return y_hat, chosen


# ------------------------------------------------------------------------------- student-generated (on-policy)


def split_prompts(input_ids: Tensor, attention_mask: Tensor, sql_mask: Tensor, pad_token_id: int) -> tuple[Tensor, Tensor]:
    """Left-padded prompts (the non-SQL prefix of each row) for generation: (ids, attention_mask)."""
    ids, attn, _, width = relaid(input_ids, attention_mask, sql_mask, pad_token_id)
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
