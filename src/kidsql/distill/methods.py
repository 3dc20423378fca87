"""A distillation method is data: where the training sequences come from, a divergence, and an MLE weight.

    loss = divergence(student || teacher on the batch's sequences)  +  mle_weight * CE(student, target tokens)

Fields (all methods run through the one trainer in `kidsql.distill.trainer`):
* `sequences`: "gold" (the dataset's SQL), "teacher" (generated once by the teacher before training, cached),
  or "imperfect" (KID: gold with a fraction of tokens rewritten by the student itself, every batch).
* `student_fraction` (GKD's lambda): the fraction of batches whose sequences are instead sampled on-policy
  from the current student. The coin is flipped once per micro-batch, identically on every process.
* `divergence`: a name of `kidsql.distill.divergences` or None (no teacher term: SFT/SeqKD).
* `mle_weight`: weight of the cross-entropy term. It is applied on batches whose targets are trustworthy
  (gold, teacher-generated, KID's gold targets) and skipped on student-sampled batches (CE on the student's
  own samples would only reinforce them). The paper gives the baselines on gold data the MLE term "for
  fairness", hence 1 for FKD/RKD/ImitKD/GKD/KID.

Named configurations and how they read the papers:
* sft      gold, CE only.
* seqkd    teacher-generated, CE only: sequence-level KD (Kim & Rush 2016) is SFT on the teacher's outputs.
* fkd/rkd  gold, FKL / RKL + MLE 1 (word-level KD).
* fdistill teacher-generated and student-generated sequences (half of the batches each), TVD, no MLE
           (f-distill trains on model samples only; it has no gold term).
* imitkd   gold mixed with student samples, the student's share of the batches annealed linearly from 0 to 1
           over the run (ImitKD's schedule), FKL + MLE 1.
* gkd      on-policy student samples on lambda = 0.5 of the batches, else gold; JSD(beta = 0.5) + MLE 1 on the
           gold batches. Variants gkd-fkl, gkd-rkl; gkd-jsd names gkd itself (`ALIASES`).
* kid      imperfect gold (alpha 0.2, random, argmax rewrite, BOS as mask token), RKL over all SQL positions,
           MLE 1 on the clean gold SQL (`mle_on="clean"`, see `ImperfectOptions`).

How student samples are drawn (`Method.sampling`), as each method's reference code draws them (the KID paper
does not say; `--gen_temperature`, `--gen_top_k`, `--gen_top_p` override them):
* gkd*     temperature 0.9, no top-k, no top-p: TRL's `GKDConfig` (temperature=0.9) and `GKDTrainer`, whose
           generation config is do_sample=True, top_k=0 (trl/experimental/gkd/gkd_config.py, gkd_trainer.py).
* fdistill temperature 1, top-k 30: f-distill's training scripts (`--do_sample --top_k 30 --temperature 1.`,
           github.com/MANGA-UOFA/fdistill, dart/ and summa/scripts/run_tvd_symm.sh). The scripts start TVD
           from a student first trained with MLE and word-level KD (run_pretrain_student_distill.sh): the bench's
           `--student_warmup_steps` is that step's stand-in. The teacher's sequences stay greedy (generated once).
* imitkd   temperature 1, top-k 5: ImitKD's configs (`sample: True`, `sample_top_k: 5`,
           github.com/asappresearch/imitkd, configs/iwslt/transformer/imitkd.yaml).
* kid      draws nothing (argmax rewrite); `ImperfectOptions.temperature` serves `kid_rewrite=sample`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from kidsql.errors import KidsqlError

SEQUENCE_SOURCES = ("gold", "teacher", "imperfect")
STRATEGIES = ("random", "uniform", "hard", "easy")
REWRITES = ("argmax", "sample", "none")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise KidsqlError(message)


@dataclass(frozen=True)
class ImperfectOptions:
    """KID's knobs. The paper fixes alpha and the strategy; the rest it leaves open, so each is an option.

    * `mask_token`: "bos" (the paper's `<s>`), "eos", "unk", "pad" or a literal token string.
    * `rewrite`: "argmax" (default; the student's most likely token), "sample" (from its distribution), or
      "none" (keep the mask token: the paper's masking-only ablation).
    * `kl_positions`: "all" SQL positions (the paper's equation) or only the "rewritten" ones (the positions
      whose token was rewritten: the teacher's distribution where the student had to guess).
    * `mle_on`: "clean" (default, the paper's "CE on the clean y") trains the MLE term on the clean (x, y),
      stacked with (x, y_hat) in one forward of a doubled batch, both against the one prompt forward of the
      step (`kidsql.distill.forward.PromptPrefix`; its cost: `benchmarks/step_time.py`). "imperfect" computes it
      on the SAME forward over (x, y_hat) with the gold tokens as targets (no extra forward): every position
      after a rewritten token then loses its clean-prefix CE, which costs accuracy on the CPU bench
      (`docs/results/bench-cpu-kid-ablation/`).
    """

    alpha: float = 0.2
    strategy: str = "random"
    rewrite: str = "argmax"
    mask_token: str = "bos"
    kl_positions: str = "all"
    mle_on: str = "clean"
    temperature: float = 1.0  # sampling temperature of rewrite="sample"

    def __post_init__(self) -> None:
        _check(0.0 <= self.alpha <= 1.0, f"kid alpha must lie in [0, 1], got {self.alpha}")
        _check(self.strategy in STRATEGIES, f"kid strategy {self.strategy!r} unknown; use one of {', '.join(STRATEGIES)}")
        _check(self.rewrite in REWRITES, f"kid rewrite {self.rewrite!r} unknown; use one of {', '.join(REWRITES)}")
        _check(self.kl_positions in ("all", "rewritten"), f"kid kl_positions {self.kl_positions!r}: use all or rewritten")
        _check(self.mle_on in ("imperfect", "clean"), f"kid mle_on {self.mle_on!r}: use imperfect or clean")


@dataclass(frozen=True)
class Sampling:
    """How a method draws the student's own sequences: temperature, top-k (0: off), top-p (1: off)."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        _check(self.temperature > 0, f"sampling temperature must be > 0, got {self.temperature}")
        _check(self.top_k >= 0, f"sampling top_k must be >= 0 (0: off), got {self.top_k}")
        _check(0.0 < self.top_p <= 1.0, f"sampling top_p must lie in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class GenerationOptions:
    """Decoding for generated sequences (teacher-generated once, student-generated on-policy)."""

    max_new_tokens: int = 128
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    batch_size: int = 16
    top_k: int = 0


@dataclass(frozen=True)
class Method:
    name: str
    sequences: str = "gold"
    divergence: str | None = None
    mle_weight: float = 1.0
    student_fraction: float = 0.0
    fraction_schedule: str = "constant"  # "linear": the on-policy fraction ramps 0 -> student_fraction (ImitKD)
    beta: float = 0.5  # GKD's JSD weight
    skew_alpha: float = 0.1  # DistiLLM's skew for skl/srkl
    temperature: float = 1.0
    imperfect: ImperfectOptions = field(default_factory=ImperfectOptions)
    sampling: Sampling = field(default_factory=Sampling)

    def __post_init__(self) -> None:
        from kidsql.distill.divergences import DIVERGENCES

        _check(self.sequences in SEQUENCE_SOURCES, f"sequences {self.sequences!r} unknown; use one of {', '.join(SEQUENCE_SOURCES)}")
        _check(self.divergence is None or self.divergence in DIVERGENCES,
               f"divergence {self.divergence!r} unknown; use one of {', '.join(DIVERGENCES)}")
        _check(self.fraction_schedule in ("constant", "linear"),
               f"fraction_schedule {self.fraction_schedule!r} unknown; use constant or linear")
        _check(0.0 <= self.student_fraction <= 1.0, f"student_fraction must lie in [0, 1], got {self.student_fraction}")
        _check(isinstance(self.mle_weight, (int, float)) and math.isfinite(self.mle_weight) and self.mle_weight >= 0,
               f"--mle_weight {self.mle_weight!r}: must be a finite number >= 0 (0 drops the MLE term); fix the option")
        _check(self.divergence is not None or self.mle_weight > 0, f"method {self.name}: no divergence and mle_weight 0 leaves no loss")

    def on_policy_fraction(self, step: int, max_steps: int) -> float:
        """Chance that a batch at `step` trains on the student's own samples.

        GKD keeps it fixed (lambda). ImitKD anneals its data mixture from the oracle's sequences towards the
        student's own as training goes (Lin et al., 2020), read here as a linear ramp over the run."""
        if self.fraction_schedule == "linear":
            return self.student_fraction * min(1.0, step / max(1, max_steps))
        return self.student_fraction

    @property
    def needs_teacher(self) -> bool:
        return self.divergence is not None or self.sequences == "teacher"


# the reference implementations' sampling (module docstring)
GKD_SAMPLING = Sampling(temperature=0.9)
FDISTILL_SAMPLING = Sampling(top_k=30)
IMITKD_SAMPLING = Sampling(top_k=5)

METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("sft"),
        Method("seqkd", sequences="teacher"),
        Method("fkd", divergence="fkl"),
        Method("rkd", divergence="rkl"),
        Method("fdistill", sequences="teacher", student_fraction=0.5, divergence="tvd", mle_weight=0.0,
               sampling=FDISTILL_SAMPLING),
        Method("imitkd", student_fraction=1.0, fraction_schedule="linear", divergence="fkl", sampling=IMITKD_SAMPLING),
        Method("gkd", student_fraction=0.5, divergence="jsd", beta=0.5, sampling=GKD_SAMPLING),
        Method("gkd-fkl", student_fraction=0.5, divergence="fkl", sampling=GKD_SAMPLING),
        Method("gkd-rkl", student_fraction=0.5, divergence="rkl", sampling=GKD_SAMPLING),
        Method("kid", sequences="imperfect", divergence="rkl"),
    ]
}


# other names of a row: GKD's default divergence is JSD(0.5), so gkd-jsd is gkd under its explicit name
ALIASES = {"gkd-jsd": "gkd"}


def student_sampling(method: Method, *, max_new_tokens: int, temperature: float | None = None,
                     top_k: int | None = None, top_p: float | None = None) -> GenerationOptions:
    """How the trainer samples `method`'s on-policy sequences: its reference `sampling`, with the options that
    were given (not None) in place of its values."""
    given = {k: v for k, v in (("temperature", temperature), ("top_k", top_k), ("top_p", top_p)) if v is not None}
    s = dataclasses.replace(method.sampling, **given)
    return GenerationOptions(max_new_tokens=max_new_tokens, do_sample=True, temperature=s.temperature, top_k=s.top_k,
                             top_p=s.top_p)


def get_method(name: str, **overrides: Any) -> Method:
    """A named method with some fields replaced; `kid_<field>` keys override its `ImperfectOptions`.

    None values are ignored so that unset command-line options keep the method's defaults.
    """
    key = name.lower()
    if key not in METHODS and key not in ALIASES:
        raise KidsqlError(f"unknown method {name!r}; use one of {', '.join([*METHODS, *ALIASES])}")
    base = dataclasses.replace(METHODS[ALIASES[key]], name=key) if key in ALIASES else METHODS[key]
    kid = {k[4:]: v for k, v in overrides.items() if k.startswith("kid_") and v is not None}
    plain = {k: v for k, v in overrides.items() if not k.startswith("kid_") and v is not None}
    known = {f.name for f in dataclasses.fields(Method)} - {"name", "imperfect", "sampling"}
    unknown = sorted(set(plain) - known) + sorted(f"kid_{k}" for k in set(kid) - {f.name for f in dataclasses.fields(ImperfectOptions)})
    if unknown:
        raise KidsqlError(f"method {name}: unknown override(s) {', '.join(unknown)}; see kidsql.distill.methods.Method")
    if plain.get("divergence") in ("none", "ce"):
        plain["divergence"] = None
    return dataclasses.replace(base, imperfect=dataclasses.replace(base.imperfect, **kid), **plain)
