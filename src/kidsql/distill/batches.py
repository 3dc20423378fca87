"""Training features: `prompt + sql + eos` as one token sequence, with a mask of the SQL positions.

Every method trains on the same layout, so the trainer never needs to know where a sequence came from:

    input_ids  = tokenizer(prompt) + tokenizer(" " + sql, no specials) + [eos]
    sql_mask   = 0 ... 0 (prompt, ends with SQL_START)   1 ... 1 (SQL tokens and the final EOS)

Why these choices:
* The prompt is tokenised alone, exactly as `kidsql.generate` tokenises it at inference time, so the model is
  trained on the same prompt tokens it will see (tokenising the concatenation could merge tokens across the
  boundary).
* The SQL text is `kidsql.prompts.target_text(sql)` (one leading space: after the `SQL_START` separator the SQL
  reads as a new word); generation strips whitespace from the output, so the space is invisible to users.
* The EOS is a SQL position (it counts for the losses: the model must learn to stop) but is never a KID
  masking candidate (see `kidsql.distill.sequences.imperfect_sequences`).
* Too long a prompt keeps its *last* `max_prompt_tokens` tokens (the question and `SQL_START` live at the end;
  prompts are normally fitted to a budget by `kidsql.prompts` first). Too long a SQL is cut without its EOS, so
  the model is never taught to stop mid-query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from kidsql.errors import KidsqlError


def encode_example(
    tokenizer: Any, prompt: str, sql: str, *, max_prompt_tokens: int = 1024, max_sql_tokens: int = 256
) -> dict[str, list[int]]:
    """One training feature: `{"input_ids": [...], "sql_mask": [...]}` (see the module docstring)."""
    if tokenizer.eos_token_id is None:
        raise KidsqlError("tokenizer has no eos token; training needs one to mark the end of the SQL (add it to the tokenizer)")
    from kidsql.prompts import target_text

    prompt_ids = list(tokenizer(prompt)["input_ids"])[-max_prompt_tokens:]
    sql_ids = list(tokenizer(target_text(sql), add_special_tokens=False)["input_ids"])
    sql_ids = sql_ids[:max_sql_tokens] if len(sql_ids) >= max_sql_tokens else sql_ids + [tokenizer.eos_token_id]
    return {"input_ids": prompt_ids + sql_ids, "sql_mask": [0] * len(prompt_ids) + [1] * len(sql_ids)}


def encode_examples(
    tokenizer: Any, prompts: Sequence[str], sqls: Sequence[str], *, max_prompt_tokens: int = 1024, max_sql_tokens: int = 256
) -> list[dict[str, list[int]]]:
    """`encode_example` over aligned lists of prompts and SQL strings."""
    if len(prompts) != len(sqls):
        raise KidsqlError(f"encode_examples: {len(prompts)} prompts but {len(sqls)} SQL strings; pass one SQL per prompt")
    return [
        encode_example(tokenizer, p, s, max_prompt_tokens=max_prompt_tokens, max_sql_tokens=max_sql_tokens)
        for p, s in zip(prompts, sqls)
    ]


@dataclass
class SqlCollator:
    """Right-pads features into `input_ids`, `attention_mask`, `sql_mask` (bool) and HF-style `labels`.

    Right padding keeps every real token at the same position whatever the batch, so a causal model's logits
    for a sequence do not depend on what it was batched with (which the distributed-equivalence test relies on).
    `labels` (-100 outside the SQL) is only there for Hugging Face tooling that counts label tokens. Features
    with an `index` (their row in the teacher-logit cache) pass it on as `index`.
    """

    pad_token_id: int

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        attn = torch.zeros((len(features), width), dtype=torch.long)
        sql = torch.zeros((len(features), width), dtype=torch.bool)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"], dtype=torch.long)
            attn[i, :n] = 1
            sql[i, :n] = torch.tensor(f["sql_mask"], dtype=torch.bool)
        batch = {"input_ids": ids, "attention_mask": attn, "sql_mask": sql, "labels": ids.masked_fill(~sql, -100)}
        if "index" in features[0]:  # the example's row in a teacher-logit cache (kidsql.distill.teacher_cache)
            batch["index"] = torch.tensor([f["index"] for f in features], dtype=torch.long)
        return batch
