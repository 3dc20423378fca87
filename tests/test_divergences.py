"""Divergences against brute-force float64 loops, finite differences, limits, chunking and numerical edge cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kidsql.distill.divergences import DIVERGENCES, cross_entropy, divergence
from kidsql.errors import KidsqlError

B, T, V = 2, 3, 7


def _softmax(row: list[float], temperature: float) -> list[float]:
    top = max(row)
    exps = [math.exp((x - top) / temperature) for x in row]
    total = sum(exps)
    return [e / total for e in exps]


def _kl(a: list[float], b: list[float]) -> float:
    return sum(ai * math.log(ai / bi) for ai, bi in zip(a, b) if ai > 0)


def _mix(w: float, a: list[float], b: list[float]) -> list[float]:
    return [w * ai + (1 - w) * bi for ai, bi in zip(a, b)]


def _reference_row(name: str, s: list[float], t: list[float], temperature: float, beta: float, alpha: float) -> float:
    """Textbook definitions, one position at a time, in Python floats (float64)."""
    q, p = _softmax(s, temperature), _softmax(t, temperature)
    if name == "fkl":
        return _kl(p, q)
    if name == "rkl":
        return _kl(q, p)
    if name == "jsd":
        if beta == 0:
            return _kl(p, q)
        if beta == 1:
            return _kl(q, p)
        m = _mix(beta, p, q)
        return beta * _kl(p, m) + (1 - beta) * _kl(q, m)
    if name == "tvd":
        return 0.5 * sum(abs(pi - qi) for pi, qi in zip(p, q))
    if name == "skl":
        return _kl(p, _mix(alpha, p, q))
    if name == "srkl":
        return _kl(q, _mix(1 - alpha, p, q))
    raise ValueError(name)


def _reference(name, student, teacher, mask, *, temperature=1.0, beta=0.5, alpha=0.1) -> float:
    values = [
        _reference_row(name, student[b, t].tolist(), teacher[b, t].tolist(), temperature, beta, alpha)
        for b in range(student.shape[0])
        for t in range(student.shape[1])
        if mask[b, t]
    ]
    return sum(values) / len(values)


def _inputs(seed: int, dtype=torch.float64, shape=(B, T, V)):
    g = torch.Generator().manual_seed(seed)
    student = (2 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    teacher = (2 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    mask = torch.rand(shape[:-1], generator=g) < 0.6
    mask.view(-1)[0] = True  # at least one position counts
    mask.view(-1)[-1] = False  # and at least one does not
    return student, teacher, mask


@pytest.mark.parametrize("name", DIVERGENCES)
@pytest.mark.parametrize(
    ("temperature", "beta", "alpha", "seed"), [(1.0, 0.5, 0.1, 0), (2.0, 0.3, 0.4, 1), (0.7, 0.9, 0.9, 2)]
)
def test_matches_brute_force(name, temperature, beta, alpha, seed):
    student, teacher, mask = _inputs(seed)
    got = divergence(name, student, teacher, mask, temperature=temperature, beta=beta, alpha=alpha, chunk_size=2)
    want = _reference(name, student, teacher, mask, temperature=temperature, beta=beta, alpha=alpha)
    assert want > 1e-3  # the random case is far from trivial
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_float32_close_to_reference(name):
    student, teacher, mask = _inputs(3, dtype=torch.float32)
    got = divergence(name, student, teacher, mask)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(_reference(name, student.double(), teacher.double(), mask), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_zero_for_identical_inputs(name):
    student, _, mask = _inputs(4)
    student[..., 2] = float("-inf")  # a masked vocab entry, shared by both
    value = divergence(name, student, student.clone(), mask, beta=0.3, alpha=0.2)
    assert abs(value.item()) < 1e-12
    # and strictly positive as soon as they differ
    other = student.clone()
    other[..., 0] += 1.0
    assert divergence(name, student, other, mask, beta=0.3, alpha=0.2).item() > 1e-6


@pytest.mark.parametrize("name", [*DIVERGENCES, "ce"])
def test_gradcheck_through_chunks(name):
    student, teacher, mask = _inputs(5)
    assert int(mask.sum()) > 2  # chunk_size=2 really splits the positions
    student.requires_grad_(True)
    labels = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(0))
    if name == "ce":
        def fn(s):
            return cross_entropy(s, labels, mask, chunk_size=2)
    else:
        def fn(s):
            return divergence(name, s, teacher, mask, temperature=1.5, beta=0.3, alpha=0.2, chunk_size=2)

    assert torch.autograd.gradcheck(fn, (student,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_jsd_endpoints_match_trl_convention():
    student, teacher, mask = _inputs(6)
    fkl = divergence("fkl", student, teacher, mask).item()
    rkl = divergence("rkl", student, teacher, mask).item()
    assert fkl != pytest.approx(rkl, rel=1e-3)  # the endpoints are distinguishable
    # beta = 0 and beta = 1 are special-cased exactly, as in TRL's GKDTrainer.generalized_jsd_loss
    assert divergence("jsd", student, teacher, mask, beta=0.0).item() == pytest.approx(fkl, rel=1e-12)
    assert divergence("jsd", student, teacher, mask, beta=1.0).item() == pytest.approx(rkl, rel=1e-12)
    # and they are the limits of the mixture formula, rescaled: JSD/beta -> FKL, JSD/(1-beta) -> RKL
    eps = 1e-5
    assert divergence("jsd", student, teacher, mask, beta=eps).item() / eps == pytest.approx(fkl, rel=1e-3)
    assert divergence("jsd", student, teacher, mask, beta=1 - eps).item() / eps == pytest.approx(rkl, rel=1e-3)
    # beta = 0.5 is the classic symmetric Jensen-Shannon divergence, bounded by log 2
    jsd = divergence("jsd", student, teacher, mask, beta=0.5).item()
    swapped = divergence("jsd", teacher, student, mask, beta=0.5).item()
    assert jsd == pytest.approx(swapped, rel=1e-12)
    assert 0 < jsd < math.log(2)


def test_skew_endpoints():
    student, teacher, mask = _inputs(7)
    fkl = divergence("fkl", student, teacher, mask).item()
    rkl = divergence("rkl", student, teacher, mask).item()
    assert divergence("skl", student, teacher, mask, alpha=0.0).item() == pytest.approx(fkl, rel=1e-12)
    assert divergence("srkl", student, teacher, mask, alpha=0.0).item() == pytest.approx(rkl, rel=1e-12)
    assert abs(divergence("skl", student, teacher, mask, alpha=1.0).item()) < 1e-12
    assert abs(divergence("srkl", student, teacher, mask, alpha=1.0).item()) < 1e-12
    # skewing bounds the divergence: KL(p || a p + (1-a) q) <= -log(a) since p / (a p + ...) <= 1/a
    assert divergence("skl", student, teacher, mask, alpha=0.1).item() < min(fkl, -math.log(0.1))


@pytest.mark.parametrize("name", [*DIVERGENCES, "ce"])
def test_chunked_equals_unchunked(name):
    student, teacher, mask = _inputs(8, dtype=torch.float32, shape=(3, 11, 29))
    labels = torch.randint(0, 29, (3, 11), generator=torch.Generator().manual_seed(1))
    results = []
    for chunk_size in (1, 3, 7, 1000, None):
        s = student.clone().requires_grad_(True)
        if name == "ce":
            loss = cross_entropy(s, labels, mask, chunk_size=chunk_size)
        else:
            loss = divergence(name, s, teacher, mask, chunk_size=chunk_size)
        loss.backward()
        results.append((loss.detach(), s.grad))
    value0, grad0 = results[0]
    assert grad0.abs().sum() > 0
    assert torch.all(grad0[~mask] == 0)  # unmasked positions get no gradient
    for value, grad in results[1:]:
        torch.testing.assert_close(value, value0, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(grad, grad0, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_gradient_matches_plain_autograd(name):
    """The chunked custom Function gives the gradient plain autograd gives on the full tensors."""
    student, teacher, mask = _inputs(9, shape=(2, 5, 13))
    s1 = student.clone().requires_grad_(True)
    divergence(name, s1, teacher, mask, chunk_size=3, beta=0.7, alpha=0.3).backward()
    s2 = student.clone().requires_grad_(True)
    q, p = F.softmax(s2, -1), F.softmax(teacher, -1)
    lq, lp = F.log_softmax(s2, -1), F.log_softmax(teacher, -1)
    log_m = (0.7 * p + 0.3 * q).log()
    per_position = {
        "fkl": (p * (lp - lq)).sum(-1),
        "rkl": (q * (lq - lp)).sum(-1),
        "jsd": 0.7 * (p * (lp - log_m)).sum(-1) + 0.3 * (q * (lq - log_m)).sum(-1),
        "tvd": 0.5 * (p - q).abs().sum(-1),
        "skl": (p * (lp - (0.3 * p + 0.7 * q).log())).sum(-1),
        "srkl": (q * (lq - log_m)).sum(-1),
    }[name]
    per_position[mask].mean().backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-9, atol=1e-12)


def test_temperature_hand_computed():
    # V = 2, student uniform, teacher logits (2, 0). At T = 2 the teacher is softmax(1, 0) = (e, 1) / (1 + e).
    student = torch.zeros(1, 1, 2)
    teacher = torch.tensor([[[2.0, 0.0]]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    p1 = math.e / (1 + math.e)
    fkl_t2 = p1 * math.log(2 * p1) + (1 - p1) * math.log(2 * (1 - p1))  # KL(p || (1/2, 1/2)), about 0.1109
    got = divergence("fkl", student, teacher, mask, temperature=2.0).item()
    assert got == pytest.approx(fkl_t2, rel=1e-6)  # no T^2 factor
    assert divergence("tvd", student, teacher, mask, temperature=2.0).item() == pytest.approx(p1 - 0.5, rel=1e-6)
    p1_t1 = math.exp(2) / (1 + math.exp(2))
    fkl_t1 = p1_t1 * math.log(2 * p1_t1) + (1 - p1_t1) * math.log(2 * (1 - p1_t1))
    assert divergence("fkl", student, teacher, mask).item() == pytest.approx(fkl_t1, rel=1e-6)
    assert fkl_t1 > 2 * fkl_t2  # a higher temperature flattens the teacher and shrinks the divergence


@pytest.mark.parametrize("name", [*DIVERGENCES, "ce"])
def test_empty_mask_gives_zero_with_graph(name):
    student, teacher, _ = _inputs(10, dtype=torch.float32)
    student[..., 1] = float("-inf")
    teacher[..., 1] = float("-inf")
    student.requires_grad_(True)
    mask = torch.zeros(B, T, dtype=torch.bool)
    if name == "ce":
        loss = cross_entropy(student, torch.zeros(B, T, dtype=torch.long), mask)
    else:
        loss = divergence(name, student, teacher, mask)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(student.grad == 0)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_bf16_logits(name):
    student, teacher, mask = _inputs(11, dtype=torch.bfloat16, shape=(2, 4, 33))
    s = student.clone().requires_grad_(True)
    loss = divergence(name, s, teacher, mask, chunk_size=3)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    # computed in float32 from the bf16 values: equal to the float32 computation on the same values
    reference = divergence(name, student.float(), teacher.float(), mask)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    loss.backward()
    assert s.grad.dtype == torch.bfloat16 and torch.isfinite(s.grad.float()).all()
    s32 = student.float().requires_grad_(True)
    divergence(name, s32, teacher.float(), mask).backward()
    torch.testing.assert_close(s.grad.float(), s32.grad, rtol=2e-2, atol=1e-4)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_masked_vocab_entries(name):
    """-inf logits: shared ones behave as a smaller vocabulary; one-sided ones stay finite, never NaN."""
    student, teacher, mask = _inputs(12, shape=(2, 3, 9))
    student[..., 7:] = float("-inf")
    teacher[..., 7:] = float("-inf")
    s = student.clone().requires_grad_(True)
    loss = divergence(name, s, teacher, mask, beta=0.4, alpha=0.3)
    loss.backward()
    want = _reference(name, student[..., :7], teacher[..., :7], mask, beta=0.4, alpha=0.3)
    assert loss.item() == pytest.approx(want, rel=1e-10)
    assert torch.isfinite(s.grad).all() and torch.all(s.grad[..., 7:] == 0)

    one_sided = teacher.clone()
    one_sided[..., 0] = float("-inf")  # the teacher rules out a token the student likes
    s = student.clone().requires_grad_(True)
    loss = divergence(name, s, one_sided, mask, beta=0.4, alpha=0.3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_underflowing_probabilities_do_not_nan():
    student = torch.tensor([[[0.0, -200.0, -1e4]]], requires_grad=True)
    teacher = torch.tensor([[[-1e4, 0.0, -200.0]]])
    mask = torch.ones(1, 1)
    for name in DIVERGENCES:
        loss = divergence(name, student, teacher, mask)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(student.grad).all(), name
        student.grad = None


def test_teacher_is_a_constant_and_no_grad_path_agrees():
    student, teacher, mask = _inputs(13)
    s = student.clone().requires_grad_(True)
    t = teacher.clone().requires_grad_(True)
    loss = divergence("rkl", s, t, mask, chunk_size=2)
    loss.backward()
    assert t.grad is None and s.grad is not None
    with torch.no_grad():
        assert divergence("rkl", s, t, mask, chunk_size=2).item() == pytest.approx(loss.item(), rel=1e-12)
    assert divergence("rkl", student, teacher, mask).grad_fn is None  # nothing requires grad: no graph


def test_upstream_gradient_scales():
    student, teacher, mask = _inputs(14)
    s1 = student.clone().requires_grad_(True)
    divergence("jsd", s1, teacher, mask).backward()
    s2 = student.clone().requires_grad_(True)
    (3.0 * divergence("jsd", s2, teacher, mask) + divergence("fkl", s2, teacher, mask)).backward()
    s3 = student.clone().requires_grad_(True)
    divergence("fkl", s3, teacher, mask).backward()
    torch.testing.assert_close(s2.grad, 3.0 * s1.grad + s3.grad)


def test_float_mask_equals_bool_mask():
    student, teacher, mask = _inputs(15)
    a = divergence("srkl", student, teacher, mask)
    b = divergence("srkl", student, teacher, mask.to(torch.float32))
    assert a.item() == b.item()


def test_cross_entropy_matches_torch():
    student, _, mask = _inputs(16)
    labels = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(2))
    picked = [
        _softmax(student[b, t].tolist(), 1.0)[int(labels[b, t])] for b in range(B) for t in range(T) if mask[b, t]
    ]
    want = -sum(math.log(x) for x in picked) / len(picked)
    assert cross_entropy(student, labels, mask, chunk_size=1).item() == pytest.approx(want, rel=1e-12)
    # without a mask, -100 labels are skipped (the Hugging Face convention)
    padded = labels.masked_fill(~mask, -100)
    assert cross_entropy(student, padded).item() == pytest.approx(want, rel=1e-12)
    torch_value = F.cross_entropy(student.reshape(-1, V), padded.reshape(-1)).item()
    assert cross_entropy(student, padded).item() == pytest.approx(torch_value, rel=1e-12)


def test_bad_input_raises_one_line_errors():
    student, teacher, mask = _inputs(17)
    with pytest.raises(KidsqlError, match="choose one of") as info:
        divergence("kl", student, teacher, mask)
    assert "\n" not in str(info.value)
    with pytest.raises(KidsqlError, match="same tokenizer"):
        divergence("rkl", student, teacher[..., :-1], mask)
    with pytest.raises(KidsqlError, match="mask shape"):
        divergence("rkl", student, teacher, mask[:, :-1])
    with pytest.raises(KidsqlError, match="beta"):
        divergence("jsd", student, teacher, mask, beta=1.5)
    with pytest.raises(KidsqlError, match="alpha"):
        divergence("skl", student, teacher, mask, alpha=-0.1)
    with pytest.raises(KidsqlError, match="temperature"):
        divergence("fkl", student, teacher, mask, temperature=0)
    with pytest.raises(KidsqlError, match="chunk_size"):
        divergence("fkl", student, teacher, mask, chunk_size=0)
    with pytest.raises(KidsqlError, match="outside"):
        cross_entropy(student, torch.full((B, T), V), mask)
