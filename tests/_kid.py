"""KID's rewrite called the way the tests read it: a model and keyword options instead of a guess function and
an `ImperfectOptions` (what `kidsql.distill.sequences.imperfect_sequences` takes)."""

from __future__ import annotations

from typing import Any

from kidsql.distill.forward import student_guess
from kidsql.distill.methods import ImperfectOptions
from kidsql.distill.sequences import imperfect_sequences


def kid_rewrite(model: Any, ids: Any, sql: Any, *, alpha: float = 0.2, strategy: str = "random",
                rewrite: str = "argmax", temperature: float = 1.0, mask_token_id: int, generator: Any = None,
                attention_mask: Any = None, eos_token_id: int | None = None, vocab_size: int | None = None,
                share_prefix: int | None = None, prefix: Any = None, position_ids: Any = None) -> Any:
    options = ImperfectOptions(alpha=alpha, strategy=strategy, rewrite=rewrite, temperature=temperature)
    guess = student_guess(model, attention_mask, share_prefix=share_prefix, prefix=prefix, position_ids=position_ids)
    return imperfect_sequences(guess, ids, sql, options, mask_token_id=mask_token_id, generator=generator,
                               eos_token_id=eos_token_id, vocab_size=vocab_size)
