"""Top-k + remainder divergences against brute force and a hand-computed case; the on-disk teacher-logit cache;
a training run on the cache at k = V equals the live teacher's run step for step."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from kidsql.distill.divergences import DIVERGENCES, bucket_log_probs, divergence, teacher_topk, topk_divergence
from kidsql.errors import KidsqlError

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import load_bench_tokenizer, tiny_llama, write_benchmark, write_model_config  # noqa: E402

B, T, V = 2, 3, 7


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    student = (2 * torch.randn(B, T, V, generator=g, dtype=torch.float64)).requires_grad_(True)
    teacher = 2 * torch.randn(B, T, V, generator=g, dtype=torch.float64)
    teacher[0, 0, 2] = -math.inf  # a vocabulary entry the teacher rules out
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.bool)
    return student, teacher, mask


@pytest.mark.parametrize("name", DIVERGENCES)
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_k_equal_to_the_vocabulary_is_the_full_divergence(name: str, temperature: float) -> None:
    student, teacher, mask = _inputs()
    full = divergence(name, student, teacher, mask, temperature=temperature, beta=0.3, alpha=0.2)
    ids, log_probs = teacher_topk(teacher, V, temperature=temperature)
    cached = topk_divergence(name, student, ids, log_probs, mask, temperature=temperature, beta=0.3, alpha=0.2,
                             chunk_size=1)
    (g_full,) = torch.autograd.grad(full, student)
    (g_cached,) = torch.autograd.grad(cached, student)
    assert float(cached.detach()) == pytest.approx(float(full.detach()), rel=1e-10, abs=1e-12)
    torch.testing.assert_close(g_cached, g_full, rtol=1e-9, atol=1e-12)
    assert torch.isfinite(g_cached).all()


def test_hand_computed_fkl_and_rkl_with_one_kept_entry() -> None:
    # teacher p = (0.7, 0.2, 0.1), student q = (0.5, 0.3, 0.2); k = 1 keeps entry 0, the bucket holds the rest
    p, q = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64), torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    student = q.log().view(1, 1, 3).requires_grad_(True)
    ids, log_probs = teacher_topk(p.log().view(1, 1, 3), 1)
    assert ids.tolist() == [[[0]]]
    assert log_probs.exp().tolist()[0][0] == pytest.approx([0.7, 0.3])
    mask = torch.ones(1, 1, dtype=torch.bool)
    fkl = topk_divergence("fkl", student, ids, log_probs, mask)
    assert float(fkl.detach()) == pytest.approx(0.7 * math.log(0.7 / 0.5) + 0.3 * math.log(0.3 / 0.5), rel=1e-9)
    rkl = topk_divergence("rkl", student, ids, log_probs, mask)
    assert float(rkl.detach()) == pytest.approx(0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3), rel=1e-9)
    # FKL's gradient: q - target, target = p on the kept entry, p_rest * q_j / q_rest on the others
    (grad,) = torch.autograd.grad(fkl, student)
    target = [0.7, 0.3 * 0.3 / 0.5, 0.3 * 0.2 / 0.5]
    assert grad.flatten().tolist() == pytest.approx([qi - ti for qi, ti in zip(q.tolist(), target)], abs=1e-9)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_top_k_is_a_lower_bound_and_exact_when_the_rest_is_proportional(name: str) -> None:
    student, teacher, mask = _inputs(seed=3)
    full = float(divergence(name, student.detach(), teacher, mask, beta=0.4, alpha=0.3))
    for k in (1, 3, 5):
        ids, log_probs = teacher_topk(teacher, k)
        assert float(topk_divergence(name, student.detach(), ids, log_probs, mask, beta=0.4, alpha=0.3)) <= full + 1e-12
    # a student that matches the teacher's shape outside its top 2 (other mass there): the bucketed value is exact
    ids, log_probs = teacher_topk(teacher, 2)
    shaped = teacher.clone()
    rest = torch.ones_like(shaped, dtype=torch.bool).scatter(-1, ids.long(), False)
    shaped[rest] += 1.5  # the same shift on every remaining logit keeps them proportional
    shaped.scatter_(-1, ids.long(), torch.randn(B, T, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4)))
    exact = float(divergence(name, shaped, teacher, mask, beta=0.4, alpha=0.3))
    assert exact > 1e-3
    assert float(topk_divergence(name, shaped, ids, log_probs, mask, beta=0.4, alpha=0.3)) == pytest.approx(exact, rel=1e-9)


def test_remainder_bucket_is_exact_for_tiny_masses() -> None:
    # the rest holds ~1e-30 of the mass: 1 - sum(top k) would be 0 in float32; the logsumexp keeps it
    logits = torch.tensor([[[0.0, -70.0, -71.0]]])
    _, log_probs = teacher_topk(logits, 1)
    expected = math.log(math.exp(-70.0) + math.exp(-71.0))
    assert float(log_probs[0, 0, 1]) == pytest.approx(expected, rel=1e-5)
    assert torch.isneginf(bucket_log_probs(logits, torch.tensor([[[0, 1, 2]]]))[..., -1]).all()


def test_bad_shapes_and_k_are_one_line_errors() -> None:
    student, teacher, mask = _inputs()
    ids, log_probs = teacher_topk(teacher, 3)
    with pytest.raises(KidsqlError, match="k \\+ 1"):
        topk_divergence("fkl", student, ids, log_probs[..., :-1], mask)
    with pytest.raises(KidsqlError, match="must lie in"):
        teacher_topk(teacher, V + 1)


# ------------------------------------------------------------------------------------------ the on-disk cache


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("teacher_cache") / "bench")


def test_cache_holds_the_live_teachers_top_k_and_is_read_back_without_a_forward(bench, tmp_path) -> None:
    from kidsql.distill.batches import SqlCollator, encode_examples
    from kidsql.distill.config import load_config
    from kidsql.distill.teacher_cache import cached_teacher_topk
    from kidsql.distill.trainer import training_prompts

    tok = load_bench_tokenizer(bench)
    prompts, sqls = training_prompts(load_config(None, data=str(bench), student="x"), tok)
    features = encode_examples(tok, prompts, sqls)
    teacher = tiny_llama(tok, seed=1)
    vocab = len(tok)
    kwargs = dict(fingerprint="t1", k=4, temperature=1.0, vocab_size=vocab, pad_token_id=tok.pad_token_id,
                  cache_dir=tmp_path, batch_size=3)
    cache, hit = cached_teacher_topk(teacher, features, **kwargs)
    assert not hit and len(list((tmp_path / "teacher_topk").glob("*.pt"))) == 1

    # the rows served for a batch equal teacher_topk of the live teacher's logits at its SQL positions
    order = [5, 0, 3]
    batch = SqlCollator(tok.pad_token_id)([{**features[i], "index": i} for i in order])
    kl = batch["sql_mask"][:, 1:]
    with torch.no_grad():
        live = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1, :vocab]
    want_ids, want_lp = teacher_topk(live, 4)
    ids, log_probs = cache.targets(batch["index"], kl)
    assert torch.equal(ids[kl], want_ids[kl].long())
    torch.testing.assert_close(log_probs[kl], want_lp[kl], rtol=1e-5, atol=1e-5)

    class NoForward:  # a hit must not touch the teacher
        def __getattr__(self, name):  # noqa: ANN001, ANN204
            raise AssertionError(f"teacher.{name} used on a cache hit")

    again, hit = cached_teacher_topk(NoForward(), features, **kwargs)
    assert hit and torch.equal(again.ids, cache.ids)
    # another k, teacher or data is another file
    _, hit = cached_teacher_topk(teacher, features, **{**kwargs, "k": 3})
    _, hit2 = cached_teacher_topk(teacher, features[:-1], **kwargs)
    _, hit3 = cached_teacher_topk(teacher, features, **{**kwargs, "fingerprint": "t2"})
    assert not (hit or hit2 or hit3) and len(list((tmp_path / "teacher_topk").glob("*.pt"))) == 4
    # a batch whose SQL positions do not match the cached example is refused
    with pytest.raises(KidsqlError, match="does not belong"):
        cache.targets(torch.tensor([1, 0, 3]), kl)


@pytest.mark.parametrize("method", ["fkd", "rkd"])
def test_training_on_the_cache_at_k_equal_vocab_is_the_live_teachers_run(bench, tmp_path, method: str) -> None:
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import run_distill

    tok = load_bench_tokenizer(bench)
    teacher_dir = tmp_path / "teacher"
    tiny_llama(tok, seed=5).save_pretrained(teacher_dir)
    tok.save_pretrained(teacher_dir)
    spec = "tiny:" + str(write_model_config(tmp_path))

    def run(out: str, k: int) -> list[float]:
        r = run_distill(load_config(
            None, method=method, teacher=str(teacher_dir), student=spec, data=str(bench), output_dir=str(tmp_path / out),
            max_steps=4, per_device_train_batch_size=3, learning_rate=1e-2, logging_steps=1, seed=3, bf16=False,
            save_final=False, teacher_cache_topk=k, cache_dir=str(tmp_path / "cache")))
        return [h["loss"] for h in r.log_history if "loss" in h]

    live, full, top2 = run("live", 0), run("full", len(tok)), run("top2", 2)
    assert full == pytest.approx(live, rel=1e-5)
    assert live[0] != pytest.approx(live[-1], rel=1e-3)  # it trained
    # top 2 of the vocabulary: a lower bound on the divergence term, so a different (smaller) first loss
    assert top2[0] < live[0] - 1e-4
