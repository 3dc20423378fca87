"""Batched decoding for evaluation and for the on-policy baselines (ImitKD, GKD, f-distill).

Decoding is HF `model.generate` with the KV cache, not a hand-written loop: it is the tested, fast path, and the
only thing kidsql adds is the contract around it. Prompts are left-padded (so every row's next token sits in the
last column), the continuation ends at EOS because training sequences are `prompt + SQL_START + sql + eos`, and
positions after EOS hold the pad id, so callers can mask on `ids != pad` or on "after the first EOS".
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def generate_ids(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    num_beams: int = 1,
    num_return_sequences: int = 1,
    top_k: int = 0,
) -> torch.Tensor:
    """Continuations of left-padded prompts: [B * num_return_sequences, <= max_new_tokens], pad id after each
    row's EOS; row i's continuations are rows [i * n, (i + 1) * n), best beam first under beam search.

    Works on a DDP/compiled wrapper (unwrapped with accelerate) and on a peft model (its own `generate` keeps
    the adapters active). Dropout is switched off for the call and the model's train/eval mode restored after,
    so the trainer can sample mid-training. Decoding is exactly greedy, or temperature/top-k/top-p sampling with
    exactly the given values (top_k 0 and top_p 1 are off), as each method's reference code samples: the model's own `generation_config` (a hub model's may carry a repetition penalty,
    top_k, beams...) is set aside for the call, because HF would otherwise fill every unset field from it.
    """
    import torch
    from accelerate.utils import extract_model_from_parallel
    from transformers import GenerationConfig

    model = extract_model_from_parallel(model)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else None,
        top_p=top_p if do_sample else None,
        top_k=top_k if do_sample else None,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        use_cache=True,
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
    )
    owner = _generation_config_owner(model)
    saved_config, was_training = owner.generation_config, model.training
    owner.generation_config = GenerationConfig()
    model.eval()
    try:
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    finally:
        owner.generation_config = saved_config
        model.train(was_training)
    return out[:, input_ids.shape[1]:]


def _generation_config_owner(model: Any) -> Any:
    """The transformers model whose `generation_config` HF merges into ours (inside a peft wrapper if any)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def generate_sql(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    show_progress: bool = True,
    num_beams: int = 1,
    num_return_sequences: int = 1,
) -> list[str]:
    """SQL for each prompt (each already ending with `kidsql.prompts.SQL_START`), in input order; with
    `num_return_sequences` n, n candidates per prompt, prompt i's at [i * n, (i + 1) * n) (`kidsql.guided`).

    Prompts are batched by token length (longest first: an out-of-memory shows on the first batch, and padding
    is minimal). The SQL is everything up to EOS, special tokens removed and whitespace stripped; no cut at ";"
    or newline, because the model was trained to end its SQL with EOS. A prompt longer than the model's
    positions minus `max_new_tokens` is cut from the left (keeping the question and SQL_START), with a warning.
    """
    from tqdm.auto import tqdm

    if not prompts:
        return []
    encoded = tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
    encoded = _fit_to_context(encoded, model, max_new_tokens)
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    n = num_return_sequences
    results: list[str] = [""] * (len(prompts) * n)
    device = _device_of(model)
    generated_tokens = 0
    start = time.perf_counter()
    with tqdm(total=len(prompts), desc="generate", unit="prompt", disable=not show_progress) as bar:
        for lo in range(0, len(order), batch_size):
            rows = order[lo:lo + batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, padding=True,
                                  padding_side="left", return_tensors="pt")
            new = generate_ids(
                model,
                batch["input_ids"].to(device),
                batch["attention_mask"].to(device),
                max_new_tokens=max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                do_sample=do_sample,
                temperature=temperature,
                top_p=top_p,
                num_beams=num_beams,
                num_return_sequences=n,
            ).cpu()
            generated_tokens += int(_content_lengths(new, tokenizer.eos_token_id).sum())
            for k, text in enumerate(tokenizer.batch_decode(new, skip_special_tokens=True)):
                results[rows[k // n] * n + k % n] = text.strip()
            bar.update(len(rows))
            bar.set_postfix(tok_s=f"{generated_tokens / max(time.perf_counter() - start, 1e-9):.0f}")
    return results


def _content_lengths(new: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """Tokens generated per row, counting up to and including the first EOS (the padding is not work)."""
    import torch

    is_eos = new == eos_token_id
    until_eos = is_eos.int().argmax(dim=1) + 1
    return torch.where(is_eos.any(dim=1), until_eos, torch.full_like(until_eos, new.shape[1]))


def _fit_to_context(encoded: list[list[int]], model: Any, max_new_tokens: int) -> list[list[int]]:
    config = getattr(model, "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    if not limit:
        return encoded
    room = max(limit - max_new_tokens, 1)
    too_long = sum(len(ids) > room for ids in encoded)
    if too_long:
        warnings.warn(f"{too_long} prompt(s) exceed {room} tokens (model positions {limit} - max_new_tokens "
                      f"{max_new_tokens}); cut from the left", stacklevel=3)
    return [ids[-room:] if len(ids) > room else ids for ids in encoded]


def _device_of(model: Any) -> Any:
    return next(model.parameters()).device
