"""The student's logits over one step's sequences, computed the cheapest way that equals the plain forward.

`StudentForward` is the one helper the training step calls; everything about speed lives behind it:

* only the logit positions some loss reads are computed (`logits_at`, Hugging Face's `logits_to_keep`): with
  prompts of hundreds of tokens and SQL of tens, the output layer over the prompt is most of a small model's
  cost, and with a 150k vocabulary most of the activation memory;
* `share_prefix`: rows come in blocks of questions on one database, whose schema prefix runs once per block
  (`kidsql.distill.shared_prefix`);
* `reuse_prompt` (KID, one process): the batch is re-laid so that every row's SQL starts at one column
  (`align_sql`, same logits), the student's prompt runs once with gradient (`PromptPrefix`), and every later
  pass of the step (the rewrite's guess, the training forward, its stacked clean copy) runs over the SQL only
  against the prompt's keys/values. KID's step then costs about RKD's (`benchmarks/step_time.py`). Not for
  DDP/FSDP/DeepSpeed (two forwards of the wrapped model per backward) or gradient checkpointing (no cache):
  the trainer decides.

Logit alignment, used throughout: the distribution over token t is read from the logits at position t - 1.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from kidsql.distill.shared_prefix import MIN_SHARED, cache_keyword, shared_prefix_logits, suffix_logits

Guess = Callable[[Tensor, Tensor], Tensor]  # (ids, positions) -> the student's eval-mode logits there


def plain_model(model: Any) -> Any:
    """The module whose `forward` signature tells what a model accepts (under DDP and peft wrappers)."""
    from accelerate.utils import extract_model_from_parallel

    model = extract_model_from_parallel(model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def takes_logits_to_keep(model: Any) -> bool:
    """Whether the model computes logits at chosen positions only (`logits_to_keep`, transformers >= 4.45)."""
    return _forward_takes(type(plain_model(model)), "logits_to_keep")


@functools.lru_cache(maxsize=None)
def _forward_takes(cls: type, name: str) -> bool:
    """Whether `cls.forward` has a parameter `name`: read once per model class, not on every forward."""
    return name in inspect.signature(cls.forward).parameters


def logits_at(model: Any, ids: Tensor, attention_mask: Tensor | None, positions: Tensor, *,
              share_prefix: int | None = None, position_ids: Tensor | None = None) -> Tensor:
    """Logits at `positions` only, [B, len(positions), V]. A model without `logits_to_keep` computes every
    position and is sliced. `share_prefix`: rows come in blocks of this many sharing a prefix, which runs once
    per block (same logits; the caller decides when it is safe). `position_ids`: those of a batch laid out by
    `align_sql` (then no prefix sharing)."""
    pos = {} if position_ids is None else {"position_ids": position_ids}
    if not takes_logits_to_keep(model):
        return model(input_ids=ids, attention_mask=attention_mask, **pos).logits[:, positions]
    if share_prefix and position_ids is None:
        shared = shared_prefix_logits(model, ids, attention_mask, positions, block=share_prefix)
        if shared is not None:
            return shared
    return model(input_ids=ids, attention_mask=attention_mask, logits_to_keep=positions, **pos).logits


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


def student_guess(model: Any, attention_mask: Tensor | None, *, share_prefix: int | None = None,
                  prefix: PromptPrefix | None = None, position_ids: Tensor | None = None) -> Guess:
    """The student's guess at chosen positions: eval mode, no gradient; against `prefix` (a reused prompt) when
    given, else a plain `logits_at` forward."""

    @torch.no_grad()
    def guess(ids: Tensor, positions: Tensor) -> Tensor:
        with guessing(model):
            if prefix is not None:
                return prefix.logits_at(ids, attention_mask, positions)
            return logits_at(model, ids, attention_mask, positions, share_prefix=share_prefix,
                             position_ids=position_ids)

    return guess


class StudentForward:
    """The student's logits over one step's rows (module docstring). `ids`, `attention_mask`, `sql_mask` and
    `position_ids` are the batch as every pass of the step sees it: re-laid by `align_sql` when the prompt is
    reused, else as given (`position_ids` None)."""

    def __init__(self, model: Any, ids: Tensor, attention_mask: Tensor, sql_mask: Tensor, *, pad_token_id: int,
                 share_prefix: int | None = None, reuse_prompt: bool = False, guess_reuses_prompt: bool = True
                 ) -> None:
        self.model, self.share_prefix, self.guess_reuses_prompt = model, share_prefix, guess_reuses_prompt
        self.ids, self.attention_mask, self.sql_mask = ids, attention_mask, sql_mask
        self.position_ids: Tensor | None = None
        self.prefix: PromptPrefix | None = None
        if reuse_prompt and takes_logits_to_keep(model):
            # every row's SQL from one column (same logits), so that the reused prefix is every row's whole prompt
            a_ids, a_attn, a_sql, a_pos = align_sql(ids, attention_mask, sql_mask, pad_token_id)
            length = PromptPrefix.length_for(a_sql, a_attn, aligned=True)
            if length >= MIN_SHARED:  # with gradient: the training forward reuses it too
                self.prefix = PromptPrefix(model, a_ids, a_attn, length, position_ids=a_pos)
                self.ids, self.attention_mask, self.sql_mask, self.position_ids = a_ids, a_attn, a_sql, a_pos

    def logits(self, ids: Tensor, attention_mask: Tensor, positions: Tensor) -> Tensor:
        """With gradient: logits at `positions` of `ids`, the step's rows or k copies of them stacked (KID's
        (x, y_hat) with the clean (x, y))."""
        if self.prefix is not None:
            return self.prefix.logits_at(ids, attention_mask, positions)
        copies = ids.shape[0] // self.ids.shape[0]
        pos = None if self.position_ids is None else self.position_ids.repeat(copies, 1)
        return logits_at(self.model, ids, attention_mask, positions, share_prefix=self.share_prefix, position_ids=pos)

    def teacher_logits(self, teacher: Any, ids: Tensor, positions: Tensor) -> Tensor:
        """The teacher's logits at `positions` of `ids` (the step's rows, laid out as the student's), no gradient."""
        with torch.no_grad():
            return logits_at(teacher, ids, self.attention_mask, positions, share_prefix=self.share_prefix,
                             position_ids=self.position_ids)

    @contextmanager
    def guesser(self, accelerator: Any, gather: bool = True) -> Iterator[Guess]:
        """The student's own guess over these rows. Against the reused prompt when dropout cannot make the two
        differ (its keys/values were computed in train mode); without a reused prompt, on the plain model
        (`gather`: under ZeRO-3 its weights gathered once, as for generation)."""
        if self.prefix is not None:
            prefix = self.prefix if self.guess_reuses_prompt else None
            yield student_guess(self.model, self.attention_mask, share_prefix=self.share_prefix, prefix=prefix,
                                position_ids=self.position_ids)
            return
        if not gather:
            yield student_guess(self.model, self.attention_mask, share_prefix=self.share_prefix)
            return
        from kidsql.distributed import unwrap_model_for_generation

        with unwrap_model_for_generation(self.model, accelerator) as plain:
            yield student_guess(plain, self.attention_mask, share_prefix=self.share_prefix)


class PromptPrefix:
    """The student's forward over the leading prompt tokens of a batch, run once and reused by KID's passes.

    KID runs the student on sequences that differ only inside the SQL: the no-grad rewrite pass over
    (x, masked y), and the training forward over (x, y_hat) stacked with the clean (x, y) (`mle_on="clean"`).
    Their first `length` positions (up to the first SQL token, less one so that every read logit lies after it)
    are the same tokens, so their keys/values are computed once, with gradient, and every pass runs only the
    rest against them. On a batch re-laid by `align_sql`, `length` covers every row's whole prompt (with right
    padding it ends at the batch's shortest prompt) and `position_ids` keeps each row's own positions. Logits
    equal the plain forward's (tests/test_prompt_prefix.py) and gradients reach the prompt through the cache.
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

        `ids` may hold k copies of the batch stacked (k * batch rows): the prompt's keys/values are then
        repeated k times, which keeps one prompt forward and lets the gradients of all k copies flow back."""
        from transformers import DynamicCache

        if positions.numel() and int(positions.min()) < self.length:
            raise ValueError(f"position {int(positions.min())} lies in the reused prompt prefix ({self.length} tokens)")
        copies, rest = divmod(ids.shape[0], self.prompt.shape[0])
        if rest or not copies or not torch.equal(ids[:, : self.length], self.prompt.repeat(copies, 1)):
            raise ValueError("the sequences do not start with the reused prompt prefix")
        kv = self.kv if copies == 1 else [(k.repeat(copies, 1, 1, 1), v.repeat(copies, 1, 1, 1)) for k, v in self.kv]
        if "ddp_cache_data" in inspect.signature(DynamicCache.__init__).parameters:
            cache = DynamicCache(ddp_cache_data=kv)
        else:  # transformers < 4.47
            cache = DynamicCache.from_legacy_cache(tuple(kv))
        pos = None if self.position_ids is None else self.position_ids.repeat(copies, 1)
        if pos is not None and pos.shape != ids.shape:
            raise ValueError(f"sequences of width {ids.shape[1]} against position ids of width {pos.shape[1]}")
        return suffix_logits(self.model, ids, attention_mask, cache, self.length, positions, position_ids=pos)


def relaid(input_ids: Tensor, attention_mask: Tensor, sql_mask: Tensor, pad_token_id: int
           ) -> tuple[Tensor, Tensor, Tensor, int]:
    """(ids, attention_mask, sql_mask, width of the prompt columns): every row's prompt padded on the left to end
    at one column, its SQL after it, padded on the right. Serves `align_sql` and the on-policy prompts."""
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
    forward's (tests/test_prompt_prefix.py). `PromptPrefix` then holds every row's whole prompt; on right-padded
    rows it would end at the batch's SHORTEST prompt. Returns (ids, attention_mask, sql_mask, position_ids)."""
    ids, attn, sql, _ = relaid(input_ids, attention_mask, sql_mask, pad_token_id)
    return ids, attn, sql, (attn.long().cumsum(1) - 1).clamp(min=0)
