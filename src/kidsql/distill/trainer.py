"""One trainer for every method: a `transformers.Trainer` whose `compute_loss` combines a sequence source, a
divergence to the teacher, and the MLE term (see `kidsql.distill.methods`).

Being a plain `Trainer` subclass (like TRL's GKDTrainer) is what makes `accelerate launch` run it unchanged on
several GPUs (DDP, FSDP, DeepSpeed) with gradient accumulation, bf16, checkpoints and `resume_from_checkpoint`.
The teacher is frozen, in eval mode, and placed by accelerate on the student's device (`prepare_model(...,
evaluation_mode=True)`; under DeepSpeed it gets its own inference engine, as TRL does).

Loss normalisation. Each term is a per-token mean over the SQL positions of the GLOBAL batch: every process sums
its per-position losses, the per-term token counts are gathered from all processes, and the local sum is divided
by the global count and multiplied by the number of processes (DDP averages gradients over processes). So a run
on 2 processes with per-device batch b computes the same loss and gradients as 1 process with batch 2b. Within
gradient accumulation, micro-batches are averaged (the Trainer divides by the accumulation steps); counts are not
known in advance there because on-policy methods generate their sequences inside the step.

The step (`compute_loss`): the sequences from the method's source (`kidsql.distill.sequences.SOURCES`: gold,
teacher-generated, on-policy, KID's imperfect rewrite), the student's logits over them through one helper
(`kidsql.distill.forward.StudentForward`, which holds every speed device: logits at the read positions only, the
shared schema prefix, KID's prompt reuse), the teacher's logits (or its cached top-k on gold rows), then the
divergence plus the weighted MLE term. Each term, and KID's rewrite statistics, are logged separately.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ProgressCallback

from kidsql.distill.config import DistillConfig
from kidsql.distill.divergences import cross_entropy, divergence, topk_divergence
from kidsql.distill.methods import GenerationOptions, Method, get_method, student_sampling
from kidsql.distill.forward import has_dropout
from kidsql.distill.sequences import SOURCES, SourceContext, Sequences
from kidsql.distill.shared_prefix import PREFIX_BLOCK, DatabaseGroupedSampler
from kidsql.distributed import check_launch
from kidsql.errors import KidsqlError
from kidsql.files import write_atomic, write_json
from kidsql.memory import peak_memory, reset_peak_memory
from kidsql.prompts import PromptStats
from kidsql.run_folder import Plan, clear_run, locked, plan_run


@dataclass
class TrainResult:
    """What a run produced, for the demo/bench code and `train_result.json`."""

    output_dir: Path
    model_dir: Path | None
    method: str
    final_loss: float | None
    steps: int
    mean_step_time_s: float | None
    tokens_per_s: float | None
    peak_memory_mb: float | None
    peak_memory_kind: str
    num_processes: int = 1
    log_history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        d = asdict(self)
        d["output_dir"], d["model_dir"] = str(self.output_dir), str(self.model_dir) if self.model_dir else None
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str) -> TrainResult:
        d = json.loads(text)
        d["output_dir"], d["model_dir"] = Path(d["output_dir"]), Path(d["model_dir"]) if d.get("model_dir") else None
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


class SpeedMeter(TrainerCallback):
    """Wall time per optimiser step and tokens processed, for the logs, the progress bar and `TrainResult`."""

    def __init__(self) -> None:
        self.step_times: list[float] = []
        self.tokens = 0
        self._t0 = 0.0
        self._log_steps: list[float] = []
        self._log_tokens = 0

    def add_tokens(self, n: int) -> None:
        self.tokens += n
        self._log_tokens += n

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - TrainerCallback signature
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        dt = time.perf_counter() - self._t0
        self.step_times.append(dt)
        self._log_steps.append(dt)

    def log_fields(self, world_size: int) -> dict[str, float]:
        """Mean step time and tokens/s since the previous log (tokens/s scaled to all processes)."""
        if not self._log_steps:
            return {}
        spent = sum(self._log_steps)
        out = {"step_time_s": spent / len(self._log_steps), "tokens_per_s": self._log_tokens * world_size / max(spent, 1e-9)}
        self._log_steps, self._log_tokens = [], 0
        return out

    def mean_step_time(self) -> float | None:
        """Mean over steps, the first (warm-up: allocations, lazy init) excluded when there are others."""
        times = self.step_times[1:] or self.step_times
        return sum(times) / len(times) if times else None


class DistillTrainer(Trainer):
    """`Trainer` + a `Method` + a frozen teacher. Inputs are `kidsql.distill.batches.SqlCollator` batches."""

    def __init__(
        self,
        *args: Any,
        method: Method,
        teacher: Any = None,
        generation: GenerationOptions | None = None,
        mask_token_id: int | None = None,
        vocab_size: int | None = None,
        chunk_size: int | None = None,
        groups: list[str] | None = None,
        share_prefix: bool = False,
        reuse_prompt: bool = True,
        teacher_cache: Any = None,
        **kwargs: Any,
    ) -> None:
        self.speed = SpeedMeter()
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), self.speed]
        super().__init__(*args, **kwargs)
        check_launch(self.accelerator)  # what the launch asked for (processes, FSDP, DeepSpeed) is what runs
        self.teacher_cache = teacher_cache  # kidsql.distill.teacher_cache.TeacherTopK: the teacher on gold batches
        if method.needs_teacher and teacher is None and not (teacher_cache is not None and method.student_fraction == 0):
            raise KidsqlError(f"method {method.name} needs a teacher; pass --teacher")
        self.method, self.vocab_size, self.chunk_size = method, vocab_size, chunk_size
        if method.sequences == "imperfect" and mask_token_id is None:
            raise KidsqlError("KID needs a mask token id (kid_mask_token: bos, eos, unk, pad or a token string)")
        self.loss_is_scaled_for_ga = False  # we normalise per micro-batch; let Trainer divide by accumulation steps
        self.teacher = self._prepare_teacher(teacher) if teacher is not None else None
        self._micro = (-1, 0)  # (global step, micro-batch index within it): seeds for KID masking and GKD's coin
        # one process only: DDP/FSDP/DeepSpeed expect one forward of the wrapped model per backward; gradient
        # checkpointing turns the key/value cache off; a sequential order (train_sampling_strategy) is kept as given
        on = (share_prefix and groups is not None and self.accelerator.num_processes == 1
              and not self.args.gradient_checkpointing and self.args.train_sampling_strategy == "random")
        # blocks of PREFIX_BLOCK questions per database (fewer when the batch is smaller): see DatabaseGroupedSampler
        self.share_prefix = math.gcd(self.args.per_device_train_batch_size, PREFIX_BLOCK) if on else None
        if self.share_prefix == 1:
            self.share_prefix = None
        self.groups = groups
        # KID's prompt reuse (forward.PromptPrefix): the student's passes of a step share one prompt forward
        reuse = (reuse_prompt and method.sequences == "imperfect" and not self.share_prefix
                 and self.accelerator.num_processes == 1 and not self.args.gradient_checkpointing
                 and not self.is_deepspeed_enabled and not self.is_fsdp_enabled)
        # the prompt's keys/values are computed in train mode, with gradient; the rewrite is the student's eval-mode
        # guess, so with dropout it runs its own forward and the reused prompt serves the training forward only
        tok = self.processing_class
        self.sources = SourceContext(
            method=method, accelerator=self.accelerator, generation=generation or GenerationOptions(),
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, mask_token_id=mask_token_id,
            vocab_size=vocab_size, share_prefix=self.share_prefix, reuse_prompt=reuse,
            guess_reuses_prompt=not has_dropout(self.accelerator.unwrap_model(self.model)))
        self._metrics: dict[str, list[float]] = defaultdict(list)  # per-term values since the last log
        if self.pop_callback(ProgressCallback) is not None:
            self.add_callback(ProgressWithSpeed())

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        """Blocks of `share_prefix` questions on one database when the prefix is shared (what makes it shared)."""
        if not self.share_prefix:
            return super()._get_train_sampler(train_dataset)
        return DatabaseGroupedSampler(self.groups, self.share_prefix, seed=self.args.data_seed or self.args.seed)

    def _prepare_teacher(self, teacher: Any) -> Any:
        teacher.eval()
        teacher.requires_grad_(False)
        if self.is_deepspeed_enabled:
            return _deepspeed_inference(teacher, self.accelerator)
        return self.accelerator.prepare_model(teacher, evaluation_mode=True)

    def sequences(self, model: Any, inputs: dict[str, torch.Tensor], seed: int | None = None) -> Sequences:
        """This micro-batch's sequences from the method's source, or, on the method's on-policy share of batches
        (GKD, ImitKD: one coin per micro-batch, the same on every process), the student's own samples. `seed`
        (KID's masking, the coin) defaults to one unique to (run seed, step, micro-batch): identical after a
        resume, identical on every process."""
        if seed is None:
            step, micro = self._micro
            self._micro = (step, micro + 1) if step == self.state.global_step else (self.state.global_step, 0)
            seed = (self.args.seed * 1_000_003 + self._micro[0] * 1009 + self._micro[1]) % (2**63)
        source = self.method.sequences
        if self.method.student_fraction > 0:
            fraction = self.method.on_policy_fraction(self.state.global_step, self.state.max_steps)
            on_policy = random.Random(seed).random() < fraction
            self._metrics["on_policy"].append(float(on_policy))
            source = "on-policy" if on_policy else source
        return SOURCES[source](self.sources, model, inputs, seed)

    # ------------------------------------------------------------------------------------------------ loss
    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """divergence(teacher, student) on the step's sequences + mle_weight * CE(student, target tokens), each a
        per-token mean over the global batch (module docstring)."""
        m, v = self.method, self.vocab_size
        seq = self.sequences(model, inputs)
        kl_mask = seq.kl_mask[:, 1:]
        mle_mask = seq.mle_mask[:, 1:] if seq.mle_ids is not None else torch.zeros_like(kl_mask)
        keep = (kl_mask | mle_mask).any(0).nonzero().squeeze(1)  # logits only where some loss reads them
        kl_mask, mle_mask = kl_mask[:, keep], mle_mask[:, keep]
        if seq.stacked_clean:  # (x, y_hat) and (x, y) in one forward: one backward, no double DDP forward
            both = seq.forward.logits(torch.cat([seq.ids, seq.mle_ids]), torch.cat([seq.attention_mask] * 2), keep)
            student, mle_student = both[: len(seq.ids), :, :v], both[len(seq.ids):, :, :v]
        else:
            student = mle_student = seq.forward.logits(seq.ids, seq.attention_mask, keep)[..., :v]
        self.speed.add_tokens(int(seq.attention_mask.sum()) * (2 if seq.stacked_clean else 1))

        zero = student.sum() * 0.0  # keeps the graph (and DDP's reducer) happy when a term is absent
        sums, counts = [zero, zero], [0, 0]
        if m.divergence is not None:
            counts[0] = int(kl_mask.sum())
            opts = {"temperature": m.temperature, "beta": m.beta, "alpha": m.skew_alpha, "chunk_size": self.chunk_size}
            if self.teacher_cache is not None and seq.gold:  # the cached teacher: no teacher forward
                t_ids, t_log_probs = self.teacher_cache.targets(inputs["index"], kl_mask)
                sums[0] = topk_divergence(m.divergence, student, t_ids, t_log_probs, kl_mask, **opts) * counts[0]
            else:
                teacher = seq.forward.teacher_logits(self.teacher, seq.ids, keep)[..., :v]
                sums[0] = divergence(m.divergence, student, teacher, kl_mask, **opts) * counts[0]
        if m.mle_weight > 0 and seq.mle_ids is not None:
            counts[1] = int(mle_mask.sum())
            targets = seq.mle_ids[:, 1:][:, keep]
            sums[1] = cross_entropy(mle_student, targets, mle_mask, chunk_size=self.chunk_size) * counts[1]
        total = self.accelerator.gather(torch.tensor([counts], dtype=torch.float64, device=student.device)).sum(0)
        world = self.accelerator.num_processes
        loss = (sums[0] / total[0].clamp(min=1) + m.mle_weight * sums[1] / total[1].clamp(min=1)) * world
        self._record(seq, sums, counts)
        return (loss, {"logits": student}) if return_outputs else loss

    # ------------------------------------------------------------------------------------------------- logs
    def _record(self, seq: Sequences, sums: list[torch.Tensor], counts: list[int]) -> None:
        """Each loss term's per-token mean on this process (and the source's statistics), for the next log."""
        if self.method.divergence is not None and counts[0]:  # tensors: read once per log, not synced every step
            self._metrics["divergence"].append(sums[0].detach() / counts[0])
        if counts[1]:
            self._metrics["mle"].append(sums[1].detach() / counts[1])
        for name, value in seq.stats.items():
            self._metrics[name].append(value)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Adds the loss terms, the sources' statistics, step time and tokens/s to the training logs (as TRL's
        trainers add their metrics)."""
        if "loss" in logs:
            logs.update({name: float(sum(vals) / len(vals)) for name, vals in self._metrics.items() if vals})
            logs.update(self.speed.log_fields(self.accelerator.num_processes))
            self._metrics.clear()
        super().log(logs, *args, **kwargs)


class ProgressWithSpeed(ProgressCallback):
    """transformers' progress bar with the latest loss, step time and tokens/s beside it."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - TrainerCallback signature
        if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.4f}", step_s=f"{logs.get('step_time_s', 0):.3f}",
                                          tok_s=f"{logs.get('tokens_per_s', 0):.0f}")
        return super().on_log(args, state, control, logs=logs, **kwargs)


def _deepspeed_inference(model: Any, accelerator: Any) -> Any:
    """The teacher as a DeepSpeed inference engine with the student's ZeRO config (ZeRO-3 shards it too), as TRL."""
    import copy

    import deepspeed

    cfg = copy.deepcopy(accelerator.state.deepspeed_plugin.deepspeed_config)
    if cfg.get("zero_optimization", {}).get("stage") != 3:
        cfg["zero_optimization"] = {"stage": 0}
    cfg.pop("optimizer", None)
    cfg.pop("scheduler", None)
    engine, *_ = deepspeed.initialize(model=model, config=cfg)
    engine.eval()
    return engine


# ------------------------------------------------------------------------------------------- run_distill


# KID's mask token when the tokenizer has no BOS (Qwen, GPT-2 style BPE without one): the first special token it
# has, in this order. Never a new token: adding one would change the vocabulary the teacher and student share.
MASK_FALLBACK = ("pad", "eos", "unk")


def mask_token_id(tokenizer: Any, name: str) -> int:
    """KID's mask token: "bos" (the paper), "eos", "unk", "pad", or a literal token of the vocabulary. "bos" on a
    tokenizer without one falls back to pad, then eos, then unk (`MASK_FALLBACK`; `resolve_mask_token` says which)."""
    return resolve_mask_token(tokenizer, name)[0]


def resolve_mask_token(tokenizer: Any, name: str) -> tuple[int, str]:
    """(id, what it is) of KID's mask token, e.g. (5, "pad '<|endoftext|>' (the tokenizer has no BOS)")."""
    special = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "unk": tokenizer.unk_token_id,
               "pad": tokenizer.pad_token_id}
    if name == "bos" and special["bos"] is None:
        for fallback in MASK_FALLBACK:
            if special[fallback] is not None:
                token = tokenizer.convert_ids_to_tokens(special[fallback])
                return int(special[fallback]), f"{fallback} {token!r} (the tokenizer has no BOS)"
    tid = special[name] if name in special else tokenizer.convert_tokens_to_ids(name)
    if tid is None or (name not in special and tid == tokenizer.unk_token_id and name != tokenizer.unk_token):
        raise KidsqlError(f"kid_mask_token {name!r}: the tokenizer has no such token; use bos, eos, unk, pad or a vocab token")
    return int(tid), f"{name} {tokenizer.convert_ids_to_tokens(int(tid))!r}"


def build_trainer(config: DistillConfig, *, callbacks: list[Any] | None = None) -> DistillTrainer:
    """Everything before `train()`: method, tokenizer, student (+LoRA), teacher (vocab-checked), lengths checked
    against the models' positions, data, features. The config (its prompt budget fitted to the models) is the
    trainer's `args`; what it resolved (mask token, prompt budget, shortened prompts) is in `trainer.resolved`;
    `run_distill` writes both to `run_config.json`."""
    from accelerate import PartialState
    from transformers import set_seed

    from kidsql.distill.batches import SqlCollator, encode_examples
    from kidsql.distill.sequences import model_fingerprint, teacher_generated_sql
    from kidsql.models import (LoraOptions, check_same_tokenizer, check_vocab_compatible, has_tokenizer, is_hub_id,
                               load_model, load_tokenizer, shared_vocab_size)
    from kidsql.paths import cache_dir
    from kidsql.validate import existing_input

    method = get_method(config.method, **config.method_overrides())
    for name in ("student", "data"):
        if not getattr(config, name):
            raise KidsqlError(f"--{name} is required (on the command line or in the --config YAML)")
    existing_input(config.data, "--data", "a benchmark folder (Spider/BIRD layout) or a .jsonl file")
    if method.needs_teacher and not config.teacher:
        raise KidsqlError(f"method {method.name} needs --teacher (a fine-tuned teacher folder; train one with `kidsql train`)")
    set_seed(config.seed)
    tokenizer = load_tokenizer(_tokenizer_spec(config))
    lora = LoraOptions(r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout) if config.lora else None
    student_dtype = config.student_dtype or ("auto" if config.lora else "float32")
    student = load_model(config.student, tokenizer, lora=lora, dtype=student_dtype, seed=config.seed,
                         attn_implementation=config.attn_implementation)
    teacher, vocab = None, None
    if method.needs_teacher:
        own_tokenizer = has_tokenizer(config.teacher) or is_hub_id(config.teacher)
        teacher_tok = load_tokenizer(config.teacher) if own_tokenizer else tokenizer
        check_same_tokenizer(teacher_tok, tokenizer)  # cheap: before the teacher's weights load
        teacher = load_model(config.teacher, tokenizer, dtype=config.teacher_dtype, seed=config.seed,
                             attn_implementation=config.attn_implementation)
        check_vocab_compatible(teacher, student, teacher_tok, tokenizer)
        vocab = shared_vocab_size(teacher, student, tokenizer)
    resolved: dict[str, Any] = {}
    mask_id = None
    if method.sequences == "imperfect":
        mask_id, resolved["kid_mask_token"] = resolve_mask_token(tokenizer, method.imperfect.mask_token)
    config = fit_lengths(config, [m for m in (student, teacher) if m is not None], resolved)

    stats = PromptStats()
    prompts, sqls, groups = training_prompts(config, tokenizer, with_groups=True, keep_gold=True, stats=stats)
    resolved["prompts"] = {"total": stats.total, "shortened": stats.shortened, "over_budget": stats.over_budget,
                           "max_prompt_tokens": config.max_prompt_tokens}
    state = PartialState()
    if method.sequences == "teacher":
        greedy = GenerationOptions(max_new_tokens=config.gen_max_new_tokens, do_sample=False, batch_size=config.gen_batch_size)
        with state.main_process_first():  # one process generates and caches, the others read the cache
            teacher.to(state.device)
            sqls = teacher_generated_sql(teacher, tokenizer, prompts, greedy, fingerprint=model_fingerprint(config.teacher),
                                         cache_dir=Path(config.cache_dir) if config.cache_dir else cache_dir())
    features = encode_examples(tokenizer, prompts, sqls, max_prompt_tokens=config.max_prompt_tokens,
                               max_sql_tokens=config.max_sql_tokens)
    cache = None
    if config.teacher_cache_topk and method.divergence is not None and method.sequences == "gold":
        from kidsql.distill.teacher_cache import cached_teacher_topk

        with state.main_process_first():  # one process computes and writes the cache, the others read it
            teacher.to(state.device)
            cache, _ = cached_teacher_topk(
                teacher, features, fingerprint=model_fingerprint(config.teacher), k=config.teacher_cache_topk,
                temperature=method.temperature, vocab_size=vocab, pad_token_id=tokenizer.pad_token_id,
                cache_dir=Path(config.cache_dir) if config.cache_dir else cache_dir(), batch_size=config.gen_batch_size)
        features = [{**f, "index": i} for i, f in enumerate(features)]
        if method.student_fraction == 0:  # every batch reads the cache: the teacher is not needed any more
            teacher = None
    callbacks = list(callbacks or [])
    if config.exec_eval_split and config.exec_eval_steps > 0:
        from kidsql.distill.exec_eval import ExecutionEval

        callbacks.append(ExecutionEval.for_split(config, tokenizer))
    trainer = DistillTrainer(
        model=student, args=config, train_dataset=features,
        data_collator=SqlCollator(tokenizer.pad_token_id), processing_class=tokenizer, callbacks=callbacks,
        method=method, teacher=teacher, vocab_size=vocab, chunk_size=config.chunk_size,
        generation=student_sampling(method, max_new_tokens=config.gen_max_new_tokens, temperature=config.gen_temperature,
                                    top_k=config.gen_top_k, top_p=config.gen_top_p),
        mask_token_id=mask_id,
        groups=groups, share_prefix=config.share_prompt_prefix, reuse_prompt=config.reuse_prompt_kv,
        teacher_cache=cache,
    )
    trainer.resolved = resolved
    for cb in trainer.callback_handler.callbacks:
        if hasattr(cb, "attach"):
            cb.attach(trainer)
    if trainer.is_world_process_zero():
        print(start_line(trainer))
        print(stats.line(config.max_prompt_tokens))
        if "kid_mask_token" in resolved:
            print(f"KID mask token: {resolved['kid_mask_token']}")
    return trainer


# Fewest prompt tokens worth training on: a lowered budget below this is an error, not a warning.
MIN_PROMPT_TOKENS = 32


def fit_lengths(config: DistillConfig, models: list[Any], resolved: dict[str, Any]) -> DistillConfig:
    """Prompt + SQL (+ EOS) and prompt + generated SQL checked against the models' positions, before any compute:
    the prompt budget is lowered to fit, with a warning that says so (recorded in `resolved`); when not even
    MIN_PROMPT_TOKENS would remain, a one-line error names the options to lower."""
    import copy
    import warnings

    from kidsql.models import max_positions

    limit = max_positions(*models)
    if limit is None:
        return config
    sql = max(config.max_sql_tokens + 1, config.gen_max_new_tokens)
    room = limit - sql
    if config.max_prompt_tokens <= room:
        return config
    if room < MIN_PROMPT_TOKENS:
        raise KidsqlError(f"the models embed {limit} positions, but max_sql_tokens {config.max_sql_tokens} / "
                          f"gen_max_new_tokens {config.gen_max_new_tokens} leave {room} for the prompt; lower them")
    message = (f"max_prompt_tokens {config.max_prompt_tokens} + {sql} SQL tokens exceed the models' {limit} "
               f"positions: the prompt budget is lowered to {room}")
    warnings.warn(message, stacklevel=2)
    resolved["max_prompt_tokens"] = {"asked": config.max_prompt_tokens, "used": room, "max_positions": limit}
    fitted = copy.copy(config)  # not dataclasses.replace: TrainingArguments' checks have run once already
    fitted.max_prompt_tokens = room
    return fitted


def start_line(trainer: DistillTrainer) -> str:
    """Parameters total/trainable, dtypes, devices and world size of a run, printed once at its start."""
    from kidsql.models import count_parameters

    def describe(role: str, model: Any) -> str:
        dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
        devices = sorted({str(p.device) for p in model.parameters()})
        return (f"{role} {count_parameters(model):,} parameters ({count_parameters(model, trainable_only=True):,} "
                f"trainable), {'/'.join(dtypes)} on {'/'.join(devices)}")

    parts = [describe("student", trainer.model)]
    if trainer.teacher is not None:
        parts.append(describe("teacher", trainer.teacher))
    return f"{trainer.method.name}: " + "; ".join(parts) + f"; world size {trainer.accelerator.num_processes}"


def run_distill(config: DistillConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Train per `config` (resuming when `config.resume_from_checkpoint` says so); save `output_dir/final` and `train_result.json`.

    The output folder is locked for the run and what it already holds decides how the run starts
    (`kidsql.run_folder.plan_run`): a finished run is reused with `resume_from_checkpoint="auto"`, any other
    run is refused unless `resume_from_checkpoint` or `force` says what to do with it."""
    from kidsql.validate import writable_folder

    writable_folder(config.output_dir, "--output_dir")
    with locked(config.output_dir):
        plan = plan_run(config.output_dir, resume=config.resume_from_checkpoint, force=config.force, max_steps=config.max_steps)
        if plan.finished is not None:
            print(f"{config.output_dir}: reusing the finished run ({plan.finished})")
            return TrainResult.from_json(plan.finished.read_text(encoding="utf-8"))
        return _train_run(config, plan, callbacks)


def _train_run(config: DistillConfig, plan: Plan, callbacks: list[Any] | None) -> TrainResult:
    trainer = build_trainer(config, callbacks=callbacks)
    if plan.clear:
        clear_run(config.output_dir)
    reset_peak_memory()  # this run's own peak, even when one process trains several models (bench)
    out = Path(config.output_dir)
    if trainer.is_world_process_zero():
        write_json(out / "run_config.json", {"config": trainer.args.to_dict(), "resolved": trainer.resolved})
    trainer.train(resume_from_checkpoint=plan.checkpoint)
    model_dir = out / "final" if config.save_final else None
    if model_dir is not None:
        from kidsql.models import write_vocab_stamp
        from kidsql.prompts import save_prompt_options

        trainer.save_model(str(model_dir))
        if trainer.is_world_process_zero():
            save_prompt_options(training_prompt_options(trainer.args, trainer.processing_class), model_dir)
            write_vocab_stamp(model_dir, trainer.processing_class)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    peak, kind = peak_memory()
    world = trainer.accelerator.num_processes
    result = TrainResult(
        output_dir=out, model_dir=model_dir, method=trainer.method.name, final_loss=losses[-1] if losses else None,
        steps=trainer.state.global_step, mean_step_time_s=trainer.speed.mean_step_time(),
        tokens_per_s=_tokens_per_s(trainer.speed, world), peak_memory_mb=peak, peak_memory_kind=kind,
        num_processes=world, log_history=list(trainer.state.log_history),
    )
    if trainer.is_world_process_zero():
        write_atomic(out / "train_result.json", result.to_json())
    return result


def _tokens_per_s(speed: SpeedMeter, world: int) -> float | None:
    spent = sum(speed.step_times)
    return speed.tokens * world / spent if spent > 0 else None


def _tokenizer_spec(config: DistillConfig) -> str:
    """--tokenizer, else the student folder when it holds one, else `<data>/tokenizer` (the embedded benchmark's)."""
    from kidsql.models import has_tokenizer

    if config.tokenizer:
        return config.tokenizer
    if config.student and has_tokenizer(config.student):
        return config.student
    bench_tok = Path(config.data) / "tokenizer"
    if bench_tok.is_dir():
        return str(bench_tok)
    if config.student and not config.student.startswith("tiny:"):
        return config.student  # a hub id
    raise KidsqlError(f"no tokenizer for {config.student}: pass --tokenizer DIR (or put one in {bench_tok})")


def training_prompt_options(config: DistillConfig, tokenizer: Any) -> Any:
    """The PromptOptions a run trains with (`kidsql.split_prompts.prompt_options` of the config's fields)."""
    from kidsql.split_prompts import prompt_options

    return prompt_options(tokenizer, max_prompt_tokens=config.max_prompt_tokens,
                          num_sample_values=config.num_sample_values, matched_values=config.matched_values)


def training_prompts(config: DistillConfig, tokenizer: Any, **kwargs: Any) -> tuple[list[str], ...]:
    """Prompts and gold SQL of `config.split` of `config.data`, as the run trains on them
    (`kidsql.split_prompts.build_split_prompts` with the config's fields; `kwargs`: with_groups, keep_gold, stats)."""
    from kidsql.split_prompts import build_split_prompts

    return build_split_prompts(config.data, config.split, tokenizer, training_prompt_options(config, tokenizer),
                               limit=config.limit, kind=config.data_kind, use_evidence=config.use_evidence, **kwargs)
