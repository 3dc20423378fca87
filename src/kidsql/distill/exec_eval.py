"""Evaluation by execution during training: every N steps, greedy SQL for a fixed sample of a split, scored EX.

Loss curves say little about text-to-SQL; what a user watches is whether the queries run right. The callback
marks the step in `on_step_end` and evaluates at the NEXT step's begin (or at train end): the trainer's
SpeedMeter comes after user callbacks, so evaluating in `on_step_end` would count as training time. Each point
goes to the trainer's log as `exec_ex` (so to `report_to`: TensorBoard, W&B, ...) once the callback is attached
to a trainer, and, when a path is given, as a JSON line {"step", "ex"} (the bench's learning curves), written as
it is made so that a resumed run keeps the points of its first part. The model is the live one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class ExecutionEval(TrainerCallback):
    """EX of the live model on `examples` (prompts given) every `every` steps; rank 0 only."""

    def __init__(self, prompts: list[str], examples: list[Any], bench: Any, tokenizer: Any, *, every: int,
                 path: Path | None = None, max_new_tokens: int = 96, batch_size: int = 16) -> None:
        self.prompts, self.examples, self.bench, self.tokenizer = prompts, examples, bench, tokenizer
        self.every, self.path = every, Path(path) if path is not None else None
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.pending: int | None = None
        self.trainer: Any = None

    @classmethod
    def for_split(cls, config: Any, tokenizer: Any, path: Path | None = None) -> ExecutionEval:
        """The callback of a `DistillConfig`'s `exec_eval_*` options: prompts built as the training prompts are
        (same options and tokenizer), without the gold SQL's help."""
        import dataclasses

        from kidsql.data.load import load_benchmark
        from kidsql.distill.trainer import training_prompts

        split_config = dataclasses.replace(config, split=config.exec_eval_split, limit=config.exec_eval_limit)
        prompts, _ = training_prompts(split_config, tokenizer)
        bench = load_benchmark(Path(config.data), config.exec_eval_split, kind=config.data_kind,
                               use_evidence=config.use_evidence)
        return cls(prompts, bench.examples[: config.exec_eval_limit], bench, tokenizer, every=config.exec_eval_steps,
                   path=path, max_new_tokens=config.gen_max_new_tokens, batch_size=config.gen_batch_size)

    def attach(self, trainer: Any) -> None:
        """Log each point through `trainer.log` (called by `build_trainer`)."""
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - TrainerCallback signature
        if self.every > 0 and state.global_step % self.every == 0 and state.is_world_process_zero:
            self.pending = state.global_step

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        self._flush(kwargs["model"])

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self._flush(kwargs["model"])

    def _flush(self, model: Any) -> None:
        if self.pending is None:
            return
        from kidsql.evaluate import evaluate
        from kidsql.generate import generate_sql

        step, self.pending = self.pending, None
        preds = generate_sql(model, self.tokenizer, self.prompts, max_new_tokens=self.max_new_tokens,
                             batch_size=self.batch_size, show_progress=False)
        report = evaluate(self.examples, preds, self.bench.db_dir, metrics=("ex",), schemas=self.bench.schemas,
                          workers=1, show_progress=False)
        ex = report.summary()["all"]["ex"]
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": step, "ex": ex}) + "\n")
        if self.trainer is not None:
            self.trainer.log({"exec_ex": ex})
