"""Token-level divergences between a student and a teacher, masked and chunked over positions.

Every distillation loss of the project lives here: FKL, RKL, generalised JSD(beta), TVD, the two skew KLs of
DistiLLM, and the cross-entropy (MLE) term. All reduce the same way: the per-position divergence over the
vocabulary, summed over the masked positions and divided by their count (a per-token mean, as in the paper's
``1/|y| sum_t F(p, q)``).

Conventions (p = teacher distribution, q = student distribution, both ``softmax(logits / temperature)``):

* ``fkl``  = KL(p || q)                              forward KL, mean-seeking
* ``rkl``  = KL(q || p)                              reverse KL, mode-seeking (KID's choice)
* ``jsd``  = beta KL(p || m) + (1 - beta) KL(q || m), m = beta p + (1 - beta) q
             exactly GKD's Eq. (1) (Agarwal et al. 2024) and TRL's ``GKDTrainer.generalized_jsd_loss``.
             As in TRL, beta = 0 is special-cased to KL(p || q) (FKL) and beta = 1 to KL(q || p) (RKL):
             the mixture formula itself tends to 0 at both ends, but JSD(beta)/beta -> FKL as beta -> 0 and
             JSD(beta)/(1 - beta) -> RKL as beta -> 1, so the endpoints are the KLs the family interpolates.
* ``tvd``  = 1/2 sum |p - q|
* ``skl``  = KL(p || alpha p + (1 - alpha) q)        DistiLLM's skew forward KL (Ko et al. 2024)
* ``srkl`` = KL(q || (1 - alpha) p + alpha q)        DistiLLM's skew reverse KL
             (DistiLLM's code drops the constant entropy term of the skew FKL; we keep it, so every
             divergence here is 0 for identical inputs. The gradient is the same.)

Cached teacher: `topk_divergence` takes the teacher as its top-k log-probabilities plus the exact log-mass of
the rest (`teacher_topk`; what `kidsql.distill.teacher_cache` stores) and computes the same divergences between
the k + 1-bucket distributions; exact when k = V, a lower bound otherwise (see its docstring).

Temperature: both distributions are ``softmax(logits / T)``. The result is NOT multiplied by T^2 (Hinton's
gradient-scale correction): the KID paper trains at T = 1, where the two agree. Callers that want Hinton's scaling
multiply the returned loss by ``T ** 2`` themselves.

Numerics: everything is computed in log space (``log_softmax``, ``logaddexp`` for the mixtures), in float32 per
chunk (float64 when the student logits are float64), whatever the input dtype. A ``-inf`` logit (a masked vocab
entry) has probability exactly 0; terms weighted by a zero probability contribute 0 (the 0 log 0 = 0 convention)
and never produce NaN. Where a model puts mass on an entry the other rules out, the true divergence is +inf; we
replace a ``-inf`` log-probability (and only that) by ``log(finfo.tiny)`` (about -87 in float32), so the loss
stays finite and its gradient pushes that mass away.

Memory: only masked positions are gathered, ``chunk_size`` rows at a time. When the student needs a gradient, a
custom ``torch.autograd.Function`` runs forward *and* backward of each chunk inside its forward pass and keeps
only the gradient w.r.t. the student logits, in the student dtype. Plain autograd over chunks would keep every
chunk's float32 graph (several [N, V] tensors) alive until the backward, which is what made the naive loss peak
at several full copies of the logits; see ``benchmarks/divergence_memory.py`` for the measurement. The teacher
logits are constants: they are detached and never receive a gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from kidsql.errors import KidsqlError

DIVERGENCES: tuple[str, ...] = ("fkl", "rkl", "jsd", "tvd", "skl", "srkl")

# With chunk_size=None, a chunk holds about this many vocabulary entries (8 MiB per float32 temporary; about
# ten temporaries are alive per chunk): small next to the [B, T, V] gradient, large enough that per-chunk Python
# overhead is invisible (about 14 positions at a 150k vocabulary; measured in benchmarks/divergence_memory.py).
_AUTO_CHUNK_ELEMENTS = 1 << 21

# A target is teacher logits [.., V], labels [..], or a cached teacher (ids [.., k], log-probabilities [.., k + 1]).
Target = Tensor | tuple[Tensor, ...]
# A row loss maps (student logits [n, V], the target's rows) in the compute dtype to per-row values [n].
RowLoss = Callable[[Tensor, Any], Tensor]
# A value-and-grad maps the same inputs to (per-row values [n], d(sum of values)/d(student logits) [n, V]).
ValueAndGrad = Callable[[Tensor, Any], tuple[Tensor, Tensor]]


# --------------------------------------------------------------------------------------------------------------
# Per-row math (compute dtype, one chunk at a time)
# --------------------------------------------------------------------------------------------------------------


def _log_probs(logits: Tensor) -> tuple[Tensor, Tensor]:
    """(probabilities, floored log-probabilities): exact zeros for -inf logits, finite logs everywhere."""
    logp = F.log_softmax(logits, dim=-1)
    # Only -inf is replaced (one pass; its gradient there is 0): finite log-probs below the floor are kept
    # exact, so a student probability that underflows still gets its full gradient.
    floor = math.log(torch.finfo(logp.dtype).tiny)
    return logp.exp(), torch.nan_to_num(logp, nan=math.nan, neginf=floor)


def _kl(a: Tensor, log_a: Tensor, log_b: Tensor) -> Tensor:
    """KL(a || b) per row; zero-probability entries of `a` contribute exactly 0 (logs are finite)."""
    return (a * (log_a - log_b)).sum(dim=-1)


def _log_mix(w: float, log_a: Tensor, log_b: Tensor) -> Tensor:
    """log(w a + (1 - w) b) via logaddexp, exact at w = 0 and w = 1 (no log(0) weight)."""
    if w <= 0.0:
        return log_b
    if w >= 1.0:
        return log_a
    return torch.logaddexp(log_a + math.log(w), log_b + math.log1p(-w))


def _divergence_of(name: str, q: Tensor, log_q: Tensor, p: Tensor, log_p: Tensor, *, beta: float, alpha: float) -> Tensor:
    """The per-row divergence `name` from probabilities and floored log-probabilities (see `_log_probs`)."""
    if name == "fkl":
        return _kl(p, log_p, log_q)
    if name == "rkl":
        return _kl(q, log_q, log_p)
    if name == "jsd":
        if beta == 0.0:
            return _kl(p, log_p, log_q)
        if beta == 1.0:
            return _kl(q, log_q, log_p)
        log_m = _log_mix(beta, log_p, log_q)
        return beta * _kl(p, log_p, log_m) + (1.0 - beta) * _kl(q, log_q, log_m)
    if name == "tvd":
        return 0.5 * (p - q).abs().sum(dim=-1)
    if name == "skl":
        return _kl(p, log_p, _log_mix(alpha, log_p, log_q))
    if name == "srkl":
        return _kl(q, log_q, _log_mix(1.0 - alpha, log_p, log_q))
    raise AssertionError(name)  # names are validated before this point


def _row_divergence(name: str, *, temperature: float, beta: float, alpha: float) -> RowLoss:
    """The per-row divergence `name` as a function of (student logits, teacher logits)."""

    def row(student: Tensor, teacher: Tensor) -> Tensor:
        if temperature != 1.0:  # skip two full passes over the chunk in the common case
            student, teacher = student / temperature, teacher / temperature
        q, log_q = _log_probs(student)
        p, log_p = _log_probs(teacher)
        return _divergence_of(name, q, log_q, p, log_p, beta=beta, alpha=alpha)

    return row


def _floored(log_probs: Tensor) -> tuple[Tensor, Tensor]:
    """(probabilities, floored log-probabilities) of log-probabilities, as `_log_probs` does for logits."""
    floor = math.log(torch.finfo(log_probs.dtype).tiny)
    return log_probs.exp(), torch.nan_to_num(log_probs, nan=math.nan, neginf=floor)


def _logsumexp_or_neginf(x: Tensor) -> Tensor:
    """logsumexp over the last dim, keepdim; -inf (with a zero, not NaN, gradient) for an all -inf row."""
    top = x.detach().amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = (x - top).exp().sum(dim=-1, keepdim=True)
    positive = total > 0
    return torch.where(positive, torch.log(torch.where(positive, total, torch.ones_like(total))) + top,
                       torch.full_like(total, -math.inf))


def bucket_log_probs(logits: Tensor, ids: Tensor) -> Tensor:
    """log-probabilities of softmax(`logits`) over k+1 buckets: the k entries `ids` [.., k], then all the others.

    The remainder bucket is a logsumexp over the other entries' logits, not log(1 - sum of the top k), so it is
    exact down to the smallest masses (no cancellation), and -inf when `ids` cover the whole vocabulary.
    """
    ids = ids.long()
    log_z = torch.logsumexp(logits, dim=-1, keepdim=True)
    top = logits.gather(-1, ids)
    rest = _logsumexp_or_neginf(logits.scatter(-1, ids, -math.inf))
    return torch.cat([top, rest], dim=-1) - log_z


def teacher_topk(teacher_logits: Tensor, k: int, *, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """(ids [.., k] int32, log-probabilities [.., k + 1] float32): the teacher's k most likely entries of
    softmax(logits / temperature) and, last, the exact log-mass of all the others (see `topk_divergence`)."""
    if not 1 <= k <= teacher_logits.shape[-1]:
        raise KidsqlError(f"teacher_topk: k must lie in [1, {teacher_logits.shape[-1]}] (the vocabulary), got {k}")
    logits = teacher_logits.detach().to(torch.float64 if teacher_logits.dtype == torch.float64 else torch.float32)
    if temperature != 1.0:
        logits = logits / temperature
    ids = logits.topk(k, dim=-1).indices
    return ids.to(torch.int32), bucket_log_probs(logits, ids)


def _row_topk_divergence(name: str, *, temperature: float, beta: float, alpha: float) -> RowLoss:
    """The per-row divergence `name` between the student and a cached teacher, both over k + 1 buckets."""

    def row(student: Tensor, target: tuple[Tensor, Tensor]) -> Tensor:
        ids, teacher_log_probs = target
        if temperature != 1.0:
            student = student / temperature
        q, log_q = _floored(bucket_log_probs(student, ids))
        p, log_p = _floored(teacher_log_probs)
        return _divergence_of(name, q, log_q, p, log_p, beta=beta, alpha=alpha)

    return row


def _row_cross_entropy(student: Tensor, labels: Tensor) -> Tensor:
    """-log q(label) per row."""
    return F.cross_entropy(student, labels, reduction="none")


# Closed-form gradients for the losses that matter most (RKL is KID's, FKL word-level KD's, CE the MLE term):
# about half the passes over a chunk compared with autograd through log_softmax/exp/nan_to_num.
# With z = logits / T: d KL(p||q)/dz = q - p;  d KL(q||p)/dz = q * (log q - log p - KL(q||p));  d CE/dz = q - onehot.


def _kl_value_and_grad(reverse: bool, temperature: float) -> ValueAndGrad:
    def value_and_grad(student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
        if temperature != 1.0:
            student, teacher = student / temperature, teacher / temperature
        q, log_q = _log_probs(student)
        p, log_p = _log_probs(teacher)
        if reverse:
            diff = log_q.sub_(log_p)  # log q - log p, in place: log_q is not needed any more
            values = (q * diff).sum(dim=-1)
            grad = diff.sub_(values.unsqueeze(-1)).mul_(q)
        else:
            values = (p * (log_p - log_q)).sum(dim=-1)
            grad = q.sub_(p)
        if temperature != 1.0:
            grad.div_(temperature)
        return values, grad

    return value_and_grad


def _ce_value_and_grad(student: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    log_q = F.log_softmax(student, dim=-1)
    rows = torch.arange(labels.numel(), device=labels.device)
    values = -log_q[rows, labels]
    grad = log_q.exp_()
    grad[rows, labels] -= 1.0
    return values, grad


def _autograd_value_and_grad(row_loss: RowLoss) -> ValueAndGrad:
    """Any row loss, differentiated by autograd on the chunk alone (its graph dies with the chunk)."""

    def value_and_grad(student: Tensor, target: Target) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            rows = student.detach().requires_grad_(True)
            values = row_loss(rows, target)
            (grad,) = torch.autograd.grad(values.sum(), rows)
        return values.detach(), grad

    return value_and_grad


# --------------------------------------------------------------------------------------------------------------
# Chunked engine
# --------------------------------------------------------------------------------------------------------------


def _compute_dtype(student: Tensor) -> torch.dtype:
    """float64 only when asked for (gradcheck); float32 otherwise, also for bf16/fp16 logits."""
    return torch.float64 if student.dtype == torch.float64 else torch.float32


def auto_chunk_size(vocab: int) -> int:
    """Positions per chunk when `chunk_size` is None: a fixed budget of vocabulary entries per chunk."""
    return max(1, _AUTO_CHUNK_ELEMENTS // max(vocab, 1))


def _chunks(index: tuple[Tensor, ...], chunk_size: int) -> list[tuple[Tensor, ...]]:
    n = index[0].numel()
    return [tuple(i[start : start + chunk_size] for i in index) for start in range(0, n, chunk_size)]


def _gather(x: Target, idx: tuple[Tensor, ...], dtype: torch.dtype | None) -> Any:
    """Rows `idx` of `x` (each tensor of a tuple target); floating rows in `dtype`, integer rows as they are."""
    if isinstance(x, tuple):
        return tuple(_gather(t, idx, dtype) for t in x)
    rows = x[idx]
    return rows if dtype is None or not rows.is_floating_point() else rows.to(dtype)


def _chunked_value(
    row_loss: RowLoss, student: Tensor, target: Target, index: tuple[Tensor, ...], chunk_size: int
) -> Tensor:
    """Sum of row losses over the indexed positions, without building any graph."""
    dtype = _compute_dtype(student)
    total = torch.zeros((), dtype=dtype, device=student.device)
    with torch.no_grad():
        for idx in _chunks(index, chunk_size):
            total += row_loss(_gather(student, idx, dtype), _gather(target, idx, dtype)).sum()
    return total


class _ChunkedLoss(torch.autograd.Function):
    """Mean row loss whose forward also computes the student gradient chunk by chunk.

    Only the gradient (student dtype, the student's shape) outlives the forward; each chunk's float32 graph is
    freed as soon as its gradient is taken. The backward then just scales that stored gradient.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, student: Tensor, target: Target, value_and_grad: ValueAndGrad, index: tuple[Tensor, ...], chunk_size: int
    ) -> Tensor:
        dtype = _compute_dtype(student)
        n = index[0].numel()
        grad = torch.zeros_like(student, memory_format=torch.contiguous_format)
        total = torch.zeros((), dtype=dtype, device=student.device)
        for idx in _chunks(index, chunk_size):
            values, row_grad = value_and_grad(_gather(student, idx, dtype), _gather(target, idx, dtype))
            total += values.sum()
            grad[idx] = row_grad.div_(n).to(grad.dtype)
            del values, row_grad
        ctx.save_for_backward(grad)
        return total / n

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        # Skipping the multiply when the loss is used as is avoids one more full-size tensor in the backward.
        if not torch.equal(grad_output, torch.ones_like(grad_output)):
            grad = grad * grad_output.to(grad.dtype)
        return grad, None, None, None, None


def _masked_mean(
    row_loss: RowLoss,
    student: Tensor,
    target: Target,
    mask: Tensor,
    chunk_size: int | None,
    value_and_grad: ValueAndGrad | None = None,
) -> Tensor:
    """Per-token mean of `row_loss` over the positions where `mask` is set, chunked, gradient to `student` only.

    `value_and_grad` is a faster closed form of `row_loss` and its gradient; autograd on each chunk otherwise.
    """
    if chunk_size is None:
        chunk_size = auto_chunk_size(student.shape[-1])
    index = (mask != 0).nonzero(as_tuple=True)
    if index[0].numel() == 0:
        # 0 with a graph (so `loss.backward()` still works), and no 0 * -inf NaN from masked vocab entries.
        return student.reshape(-1)[:0].to(_compute_dtype(student)).sum()
    target = tuple(t.detach() for t in target) if isinstance(target, tuple) else target.detach()
    if torch.is_grad_enabled() and student.requires_grad:
        function = value_and_grad or _autograd_value_and_grad(row_loss)
        return _ChunkedLoss.apply(student, target, function, index, chunk_size)
    return _chunked_value(row_loss, student, target, index, chunk_size) / index[0].numel()


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def _check_mask(logits: Tensor, mask: Tensor, what: str) -> None:
    if logits.dim() < 2:
        raise KidsqlError(f"{what}: logits must be [batch, seq, vocab], got {tuple(logits.shape)}; fix the caller")
    if tuple(mask.shape) != tuple(logits.shape[:-1]):
        raise KidsqlError(
            f"{what}: mask shape {tuple(mask.shape)} must equal the logits' leading shape {tuple(logits.shape[:-1])}; "
            "align logits and mask so that position t predicts token t+1"
        )


def _check_options(what: str, temperature: float, beta: float, alpha: float, chunk_size: int | None) -> None:
    """The options every divergence takes, checked before any compute."""
    if not temperature > 0:
        raise KidsqlError(f"{what}: temperature must be > 0, got {temperature}")
    if not 0.0 <= beta <= 1.0:
        raise KidsqlError(f"{what}: beta must lie in [0, 1], got {beta}")
    if not 0.0 <= alpha <= 1.0:
        raise KidsqlError(f"{what}: alpha must lie in [0, 1], got {alpha}")
    if chunk_size is not None and chunk_size < 1:
        raise KidsqlError(f"{what}: chunk_size must be >= 1 or None, got {chunk_size}")


def divergence(
    name: str,
    student_logits: Tensor,
    teacher_logits: Tensor,
    mask: Tensor,
    *,
    temperature: float = 1.0,
    beta: float = 0.5,
    alpha: float = 0.1,
    chunk_size: int | None = None,
) -> Tensor:
    """Mean over masked positions of the divergence `name` between teacher and student next-token distributions.

    `student_logits` and `teacher_logits` are [B, T, V], already aligned so position t predicts token t+1; `mask`
    [B, T] (bool or 0/1) selects the positions that count. `beta` is GKD's JSD weight, `alpha` the skew of
    "skl"/"srkl"; see the module docstring for the exact formulas. `chunk_size` is the number of positions per
    chunk (None: `auto_chunk_size(V)`, about 2M vocabulary entries per chunk). Returns a float32 scalar (float64
    for float64 logits); 0 with a graph when the mask selects nothing.
    """
    if name not in DIVERGENCES:
        raise KidsqlError(f"unknown divergence {name!r}; choose one of {', '.join(DIVERGENCES)}")
    if student_logits.shape != teacher_logits.shape:
        raise KidsqlError(
            f"divergence {name}: student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ; teacher and student need the same tokenizer "
            "(see kidsql.models.check_vocab_compatible)"
        )
    _check_mask(student_logits, mask, f"divergence {name}")
    _check_options(f"divergence {name}", temperature, beta, alpha, chunk_size)
    row = _row_divergence(name, temperature=float(temperature), beta=float(beta), alpha=float(alpha))
    closed_form = None
    if name in ("fkl", "rkl") or (name == "jsd" and beta in (0.0, 1.0)):
        reverse = name == "rkl" or (name == "jsd" and beta == 1.0)
        closed_form = _kl_value_and_grad(reverse=reverse, temperature=float(temperature))
    return _masked_mean(row, student_logits, teacher_logits, mask, chunk_size, closed_form)


def topk_divergence(
    name: str,
    student_logits: Tensor,
    teacher_ids: Tensor,
    teacher_log_probs: Tensor,
    mask: Tensor,
    *,
    temperature: float = 1.0,
    beta: float = 0.5,
    alpha: float = 0.1,
    chunk_size: int | None = None,
) -> Tensor:
    """`divergence` against a cached teacher: its top-k entries `teacher_ids` [B, T, k] and the log-probabilities
    `teacher_log_probs` [B, T, k + 1] of those k entries and of one remainder bucket (`teacher_topk`'s output,
    computed at the same `temperature`).

    Both distributions are coarse-grained to the same k + 1 buckets (the teacher's top k, then everything else) and
    the divergence is taken between the two bucket distributions; the student's remainder mass is a logsumexp
    over its other logits. What that changes (see `docs/teacher-cache.md`): with k = V it is `divergence` exactly.
    With k < V, every divergence here is an f-divergence, so by the data-processing inequality the bucketed value
    is <= the full one; it equals it exactly when, outside the top k, the student's distribution is proportional
    to the teacher's (q_j / q_rest = p_j / p_rest), and in particular when the teacher's remainder mass is 0.
    For FKL the student's gradient is q - target, with target_j = p_j on the top k and p_rest * q_j / q_rest
    elsewhere: the remainder's total mass is taught, its shape is left as the student has it.
    """
    if name not in DIVERGENCES:
        raise KidsqlError(f"unknown divergence {name!r}; choose one of {', '.join(DIVERGENCES)}")
    _check_mask(student_logits, mask, f"topk_divergence {name}")
    k = teacher_ids.shape[-1]
    lead = tuple(student_logits.shape[:-1])
    if tuple(teacher_ids.shape[:-1]) != lead or tuple(teacher_log_probs.shape) != (*lead, k + 1):
        raise KidsqlError(
            f"topk_divergence {name}: teacher ids {tuple(teacher_ids.shape)} and log-probs "
            f"{tuple(teacher_log_probs.shape)} must be [{', '.join(map(str, lead))}, k] and [.., k + 1]; "
            "pass teacher_topk's output for the same positions"
        )
    _check_options(f"topk_divergence {name}", temperature, beta, alpha, chunk_size)
    row = _row_topk_divergence(name, temperature=float(temperature), beta=float(beta), alpha=float(alpha))
    return _masked_mean(row, student_logits, (teacher_ids, teacher_log_probs), mask, chunk_size)


def cross_entropy(
    student_logits: Tensor, labels: Tensor, mask: Tensor | None = None, *, chunk_size: int | None = None
) -> Tensor:
    """The MLE term: mean over masked positions of -log q(label), same alignment and chunking as `divergence`.

    `labels` [B, T] holds the token each position predicts. Without `mask`, positions whose label is -100 (the
    Hugging Face ignore index) are skipped; with it, they must not be selected.
    """
    if tuple(labels.shape) != tuple(student_logits.shape[:-1]):
        raise KidsqlError(
            f"cross_entropy: labels shape {tuple(labels.shape)} must equal the logits' leading shape "
            f"{tuple(student_logits.shape[:-1])}; shift labels so that position t holds token t+1"
        )
    if mask is None:
        mask = labels != -100
    _check_mask(student_logits, mask, "cross_entropy")
    selected = labels[mask != 0]
    if selected.numel() and (int(selected.min()) < 0 or int(selected.max()) >= student_logits.shape[-1]):
        raise KidsqlError(
            f"cross_entropy: a selected label lies outside [0, {student_logits.shape[-1]}); "
            "mask out padding (-100) positions or fix the tokenizer/vocab size"
        )
    if chunk_size is not None and chunk_size < 1:
        raise KidsqlError(f"cross_entropy: chunk_size must be >= 1 or None, got {chunk_size}")
    return _masked_mean(_row_cross_entropy, student_logits, labels, mask, chunk_size, _ce_value_and_grad)
