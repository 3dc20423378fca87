"""The one way a trained model writes SQL for a benchmark split: `kidsql predict`, the demo and the bench call it.

Why one function: a model must be evaluated on exactly the prompts it was trained on. A model folder made by
kidsql holds `prompt_options.json` (the `PromptOptions` fields of its training run) and those win. A folder
without one (a model trained elsewhere) gets the product defaults, with the prompt budget set to the model's
context minus the SQL it may write, counted by its own tokenizer, so long schemas shrink the documented way
(`kidsql.prompts`) instead of being cut blindly. A saved budget that leaves no room for the SQL within the
model's positions is lowered, with a warning, and the number of shortened prompts is printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kidsql.data.types import Benchmark, Example
    from kidsql.guided import GuidedDecoding
    from kidsql.prompts import PromptOptions


def inference_prompt_options(saved: dict[str, Any], tokenizer: Any, model: Any, max_new_tokens: int) -> PromptOptions:
    """A model's saved training options (`read_prompt_options`) over the defaults, with a token budget that leaves
    room for the SQL."""
    from kidsql.prompts import PromptOptions, token_counter

    import warnings

    from kidsql.models import max_positions

    saved = dict(saved)
    limit = max_positions(model) if model is not None else None
    if limit and saved.get("max_prompt_tokens") is None:
        saved["max_prompt_tokens"] = max(limit - max_new_tokens, 1)
    elif limit and saved["max_prompt_tokens"] + max_new_tokens > limit:
        room = max(limit - max_new_tokens, 1)
        warnings.warn(f"prompt budget {saved['max_prompt_tokens']} + {max_new_tokens} new tokens exceed the model's "
                      f"{limit} positions: the prompt budget is lowered to {room}", stacklevel=2)
        saved["max_prompt_tokens"] = room
    return PromptOptions(**saved, count_tokens=token_counter(tokenizer))


def load_for_inference(model_dir: Path | str, dtype: str = "auto") -> tuple[Any, Any]:
    """(model, tokenizer) of a saved folder or hub id, in eval mode on the best device."""
    import torch

    from kidsql.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    model = load_model(str(model_dir), tokenizer, dtype=dtype)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return model, tokenizer


def predict_examples(model_dir: Path | str, bench: Benchmark, examples: list[Example], *, max_new_tokens: int = 128,
                     batch_size: int = 16, model: Any = None, tokenizer: Any = None, dtype: str = "auto",
                     show_progress: bool = True, guided: GuidedDecoding | None = None) -> list[str]:
    """Greedy SQL for `examples` of `bench` (pass `model`/`tokenizer` to skip loading them from `model_dir`), or
    execution-guided SQL (`kidsql.guided`) on each example's database when `guided` has several candidates."""
    from kidsql.generate import generate_sql
    from kidsql.prompts import PromptStats, build_prompts, read_prompt_options

    saved = read_prompt_options(Path(model_dir))  # a bad file fails before any slow loading
    if model is None or tokenizer is None:
        model, tokenizer = load_for_inference(model_dir, dtype)
    options = inference_prompt_options(saved, tokenizer, model, max_new_tokens)
    stats = PromptStats()
    prompts = build_prompts(bench, examples, options, stats=stats)
    if show_progress or stats.shortened:
        print(f"{bench.name}: {stats.line(options.max_prompt_tokens)}")
    if guided is not None and guided.guides:
        from kidsql.guided import generate_guided

        dbs = [bench.db_path(ex.db_id) for ex in examples]
        return [c.sql for c in generate_guided(model, tokenizer, prompts, dbs, guided, max_new_tokens=max_new_tokens,
                                               batch_size=batch_size, show_progress=show_progress)]
    return generate_sql(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                        show_progress=show_progress)
