"""KID's prompt reuse (`PromptPrefix`) against the plain forwards: logits, gradients, y_hat and the trainer's loss."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from kidsql.distill.forward import PromptPrefix, logits_at

sys.path.insert(0, str(Path(__file__).parent))
from _kid import kid_rewrite  # noqa: E402
from _tiny import MICRO_CONFIG  # noqa: E402


def _model(seed: int = 0):  # noqa: ANN202
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**MICRO_CONFIG, vocab_size=97, pad_token_id=0)).float()


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded rows of different prompts (lengths 30, 24, 37) then SQL (lengths 8, 12, 5): ids, attn, sql."""
    g = torch.Generator().manual_seed(seed)
    prompts, sqls = [30, 24, 37], [8, 12, 5]
    width = max(p + s for p, s in zip(prompts, sqls))
    ids = torch.zeros(3, width, dtype=torch.long)
    attn, sql = torch.zeros_like(ids), torch.zeros_like(ids, dtype=torch.bool)
    for i, (p, s) in enumerate(zip(prompts, sqls)):
        ids[i, : p + s] = torch.randint(3, 97, (p + s,), generator=g)
        attn[i, : p + s] = 1
        sql[i, p: p + s] = True
    return ids, attn, sql


def test_length_is_the_earliest_sql_start_less_one() -> None:
    ids, attn, sql = _batch()
    assert PromptPrefix.length_for(sql, attn) == 23  # row 1's SQL starts at 24; its logit is read at 23
    no_sql = sql.clone()
    no_sql[2] = False
    assert PromptPrefix.length_for(no_sql, attn) == 0
    left_padded = attn.clone()
    left_padded[0, 0] = 0
    assert PromptPrefix.length_for(sql, left_padded) == 0


def test_reused_logits_and_gradients_equal_the_plain_forward() -> None:
    model = _model()
    ids, attn, sql = _batch()
    positions = torch.arange(23, ids.shape[1] - 1)
    read = sql[:, 1:][:, positions]  # the logits a loss over the SQL reads

    plain = logits_at(model, ids, attn, positions)
    (plain.float().logsumexp(-1) * read).sum().backward()
    grads_plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    prefix = PromptPrefix(model, ids, attn, PromptPrefix.length_for(sql, attn))
    with torch.no_grad():  # KID's rewrite pass, on other SQL tokens, before the training forward
        other = ids.masked_fill(sql, 1)
        assert torch.allclose(prefix.logits_at(other, attn, positions), logits_at(model, other, attn, positions),
                              atol=1e-5)
    reused = prefix.logits_at(ids, attn, positions)
    (reused.float().logsumexp(-1) * read).sum().backward()

    assert torch.allclose(reused[read], plain[read], atol=1e-5)
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, grads_plain[name], atol=1e-5, rtol=1e-4), name


def test_positions_inside_the_prefix_or_another_prompt_are_refused() -> None:
    model = _model()
    ids, attn, sql = _batch()
    with torch.no_grad():
        prefix = PromptPrefix(model, ids, attn, 23)
        with pytest.raises(ValueError, match="prefix"):
            prefix.logits_at(ids, attn, torch.arange(10, 30))
        with pytest.raises(ValueError, match="prefix"):
            prefix.logits_at(ids.roll(1, 0), attn, torch.arange(23, 30))


def test_imperfect_sequences_are_the_same_with_the_reused_prompt() -> None:
    model = _model()
    ids, attn, sql = _batch()
    kw = dict(alpha=0.5, strategy="uniform", mask_token_id=1, attention_mask=attn)
    plain, chosen = kid_rewrite(model, ids, sql, **kw)
    with torch.no_grad():
        prefix = PromptPrefix(model, ids, attn, PromptPrefix.length_for(sql, attn))
    reused, chosen2 = kid_rewrite(model, ids, sql, prefix=prefix, **kw)
    assert chosen.any() and torch.equal(chosen, chosen2)
    assert torch.equal(reused, plain)


def test_the_trainer_reuses_the_prompt_for_kid_and_the_loss_is_unchanged(tmp_path) -> None:
    from kidsql.distill.methods import get_method

    sys.path.insert(0, str(Path(__file__).parent))
    from test_trainer import _trainer  # the DistillTrainer on two random micro Llamas

    from _tiny import write_benchmark

    bench = write_benchmark(tmp_path / "bench")
    trainer = _trainer(bench, tmp_path, get_method("kid", kid_strategy="uniform", kid_alpha=0.3, kid_mle_on="imperfect"))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in (1, 2, 6)])
    assert trainer.sources.reuse_prompt
    assert trainer.sequences(trainer.model, batch, seed=0).forward.prefix is not None
    reused = float(trainer.compute_loss(trainer.model, batch).detach())
    trainer.sources.reuse_prompt = False
    trainer._micro = (-1, 0)  # the same masking seed as the first call
    plain = float(trainer.compute_loss(trainer.model, batch).detach())
    assert reused == pytest.approx(plain, rel=1e-5)


def test_two_stacked_copies_share_one_prompt_forward_with_the_plain_gradients() -> None:
    """KID with mle_on=clean: (x, y_hat) and (x, y) stacked run against one prompt forward; logits and gradients
    equal the plain forward of the doubled batch (a wrong repeat order would pair rows with other prompts)."""
    model = _model()
    ids, attn, sql = _batch()
    other = ids.masked_fill(sql & (torch.arange(ids.shape[1]) % 3 == 0), 5)  # a y_hat: some SQL tokens changed
    both, both_attn = torch.cat([other, ids]), torch.cat([attn, attn])
    positions = torch.arange(23, ids.shape[1] - 1)
    read = torch.cat([sql, sql])[:, 1:][:, positions]

    plain = logits_at(model, both, both_attn, positions)
    (plain.float().logsumexp(-1) * read).sum().backward()
    grads_plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    prefix = PromptPrefix(model, ids, attn, PromptPrefix.length_for(sql, attn))
    reused = prefix.logits_at(both, both_attn, positions)
    (reused.float().logsumexp(-1) * read).sum().backward()
    assert torch.allclose(reused[read], plain[read], atol=1e-5)
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, grads_plain[name], atol=1e-5, rtol=1e-4), name
    with pytest.raises(ValueError, match="prefix"):  # not a whole number of copies of the batch
        prefix.logits_at(both[:4], both_attn[:4], positions)


def test_kid_with_a_clean_mle_term_reuses_the_prompt_and_the_loss_is_unchanged(tmp_path) -> None:
    from kidsql.distill.methods import get_method

    sys.path.insert(0, str(Path(__file__).parent))
    from test_trainer import _trainer

    from _tiny import write_benchmark

    bench = write_benchmark(tmp_path / "bench")
    trainer = _trainer(bench, tmp_path, get_method("kid", kid_strategy="uniform", kid_alpha=0.3, kid_mle_on="clean"))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in (1, 2, 6)])
    assert trainer.sequences(trainer.model, batch, seed=0).forward.prefix is not None
    trainer._micro = (-1, 0)
    reused = float(trainer.compute_loss(trainer.model, batch).detach())
    trainer.sources.reuse_prompt = False
    trainer._micro = (-1, 0)
    plain = float(trainer.compute_loss(trainer.model, batch).detach())
    imperfect = _trainer(bench, tmp_path / "b", get_method("kid", kid_strategy="uniform", kid_alpha=0.3,
                                                           kid_mle_on="imperfect"))
    imperfect.model.load_state_dict(trainer.model.state_dict())
    other = float(imperfect.compute_loss(imperfect.model, batch).detach())
    assert reused == pytest.approx(plain, rel=1e-5)
    assert abs(reused - other) > 1e-4  # the clean MLE term is a different loss from the cheap one


def test_masking_only_reuses_the_prompt_only_when_the_clean_mle_term_doubles_the_batch(tmp_path) -> None:
    """kid_rewrite=none has no rewrite pass; with the clean MLE term its training forward is still two stacked
    copies of every prompt, which then run against one prompt forward (same loss)."""
    from kidsql.distill.methods import get_method

    sys.path.insert(0, str(Path(__file__).parent))
    from test_trainer import _trainer

    from _tiny import write_benchmark

    bench = write_benchmark(tmp_path / "bench")
    batch = None
    for mle_on, reuses in (("clean", True), ("imperfect", False)):
        method = get_method("kid", kid_rewrite="none", kid_alpha=0.3, kid_strategy="uniform", kid_mle_on=mle_on)
        trainer = _trainer(bench, tmp_path / mle_on, method)
        batch = batch or trainer.data_collator([trainer.train_dataset[i] for i in (1, 2, 6)])
        assert (trainer.sequences(trainer.model, batch, seed=0).forward.prefix is not None) == reuses
        trainer._micro = (-1, 0)
        reused = float(trainer.compute_loss(trainer.model, batch).detach())
        trainer.sources.reuse_prompt = False
        trainer._micro = (-1, 0)
        assert reused == pytest.approx(float(trainer.compute_loss(trainer.model, batch).detach()), rel=1e-5)


def _gpt2():  # noqa: ANN202
    """Absolute position embeddings: the model where wrong position ids change every logit (RoPE models are
    invariant to a per-row shift of positions, so a Llama cannot show it)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=97, n_embd=32, n_layer=2, n_head=4, n_positions=128, bos_token_id=1, eos_token_id=2)
    return GPT2LMHeadModel(config).float().eval()  # eval: no dropout


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_aligned_batch_gives_the_right_padded_logits_and_a_prefix_over_every_whole_prompt(kind: str) -> None:
    from kidsql.distill.forward import align_sql

    model = _model() if kind == "llama" else _gpt2()
    ids, attn, sql = _batch()
    a_ids, a_attn, a_sql, pos = align_sql(ids, attn, sql, pad_token_id=0)
    assert a_ids.shape == (3, 37 + 12)  # longest prompt + longest SQL
    assert (a_sql.float().argmax(1) == 37).all()  # every row's SQL starts at column 37
    assert torch.equal(a_ids[a_sql], ids[sql]) and int(a_attn.sum()) == int(attn.sum())
    assert a_attn[1, : 37 - 24].sum() == 0 and pos[1, 37 - 24] == 0 and pos[1, 37] == 24  # row 1: 13 pads, then its own count

    plain = model(input_ids=ids, attention_mask=attn).logits
    shifted_plain = plain[:, :-1][sql[:, 1:]]  # logits that predict each SQL token
    length = PromptPrefix.length_for(a_sql, a_attn, aligned=True)
    assert length == 36 and PromptPrefix.length_for(a_sql, a_attn) == 0  # left pads: only when told it is aligned
    positions = torch.arange(length, a_ids.shape[1] - 1)
    read = a_sql[:, 1:][:, positions]
    prefix = PromptPrefix(model, a_ids, a_attn, length, position_ids=pos)
    assert torch.allclose(prefix.logits_at(a_ids, a_attn, positions)[read], shifted_plain, atol=1e-5)
    full = logits_at(model, a_ids, a_attn, positions, position_ids=pos)
    assert torch.allclose(full[read], shifted_plain, atol=1e-5)
    if kind == "gpt2":  # without the position ids the left pads shift every absolute position
        wrong = logits_at(model, a_ids, a_attn, positions)
        assert not torch.allclose(wrong[read], shifted_plain, atol=1e-2)


@pytest.mark.parametrize("strategy", ["hard", "easy", "random"])
def test_imperfect_sequences_on_the_aligned_reused_prompt_match_the_plain_ones(strategy: str) -> None:
    """Same tokens chosen (hard/easy: by the entropy computed against the prefix) and rewritten; the random
    strategy draws over columns, so the same generator seed picks the same SQL tokens only when the SQL columns
    are the same: compared on the SQL tokens of each row."""
    from kidsql.distill.forward import align_sql

    model = _model()
    ids, attn, sql = _batch()
    a_ids, a_attn, a_sql, pos = align_sql(ids, attn, sql, pad_token_id=0)
    kw = dict(alpha=0.5, strategy=strategy, mask_token_id=1)
    with torch.no_grad():
        plain, chosen = kid_rewrite(model, a_ids, a_sql, attention_mask=a_attn, position_ids=pos,
                                            generator=torch.Generator().manual_seed(3), **kw)
        prefix = PromptPrefix(model, a_ids, a_attn, PromptPrefix.length_for(a_sql, a_attn, aligned=True),
                              position_ids=pos)
        reused, chosen2 = kid_rewrite(model, a_ids, a_sql, attention_mask=a_attn, prefix=prefix,
                                              generator=torch.Generator().manual_seed(3), **kw)
        right, chosen3 = kid_rewrite(model, ids, sql, attention_mask=attn,
                                             generator=torch.Generator().manual_seed(3), **kw)
    assert chosen.any() and torch.equal(chosen, chosen2) and torch.equal(reused, plain)
    if strategy != "random":  # the right-padded layout picks and rewrites the same SQL tokens
        assert torch.equal(chosen3[sql], chosen[a_sql]) and torch.equal(right[sql], plain[a_sql])


def test_align_sql_refuses_a_row_whose_sql_does_not_follow_its_prompt() -> None:
    from kidsql.distill.forward import align_sql
    from kidsql.distill.sequences import split_prompts

    ids, attn, sql = _batch()
    bad = sql.clone()
    bad[1, 0] = True  # an SQL token before row 1's prompt
    for relay in (lambda: align_sql(ids, attn, bad, 0), lambda: split_prompts(ids, attn, bad, 0)):
        with pytest.raises(ValueError, match="row 1: SQL tokens must follow all prompt tokens"):
            relay()
