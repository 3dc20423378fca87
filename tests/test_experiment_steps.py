"""kidsql.experiments (steps, config) and the fast parts of demo/bench: config precedence, atomic benchmark cache, teacher key,
ablation variants, aggregation against hand-computed values, learning-curve files, the demo's conclusion."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kidsql.experiments import steps
from kidsql.experiments.config import Budget
from kidsql.experiments.curves import read_curve
from kidsql.experiments.bench import BenchConfig, aggregate, variants
from kidsql.experiments.demo import DemoConfig, conclusion
from kidsql.config import add_dataclass_arguments, given_fields, load_dataclass
from kidsql.errors import KidsqlError


def _parse(cls, argv):
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, cls)
    args = parser.parse_args(argv)
    return load_dataclass(cls, args.config, **given_fields(args, cls))


def test_config_precedence_defaults_yaml_command_line(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("student_steps: 7\nbatch-size: 3\nmasking_only: true\n", encoding="utf-8")
    cfg = _parse(BenchConfig, ["--config", str(cfg_file), "--batch-size", "5", "--alphas", "0.1,0.3"])
    assert cfg.student_steps == 7  # YAML beats the default
    assert cfg.batch_size == 5  # the command line beats YAML
    assert cfg.masking_only is True and cfg.alphas == "0.1,0.3"
    assert cfg.seeds == BenchConfig().seeds  # untouched fields keep their defaults
    assert _parse(DemoConfig, []).out == "runs/demo" and _parse(BenchConfig, []).out == "runs/bench"
    bad = tmp_path / "bad.yaml"
    bad.write_text("nope: 1\n", encoding="utf-8")
    with pytest.raises(KidsqlError, match="bad.yaml: unknown option"):
        _parse(DemoConfig, ["--config", str(bad)])


def test_ensure_benchmark_is_atomic_and_generated_once(tmp_path, monkeypatch):
    import kidsql.data.synth as synth

    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path))
    calls = []

    def broken(out, *, seed, size):
        (Path(out) / "dev.json").write_text("[]", encoding="utf-8")
        raise RuntimeError("killed mid-way")

    def fake(out, *, seed, size):
        calls.append((seed, size))
        (Path(out) / "tokenizer").mkdir()
        (Path(out) / "dev.json").write_text("[]", encoding="utf-8")
        return Path(out)

    monkeypatch.setattr(synth, "generate_benchmark", broken)
    with pytest.raises(RuntimeError):
        steps.ensure_benchmark("small", 3)
    root = tmp_path / "benchmarks"
    assert list(root.iterdir()) == []  # nothing half-written survives
    monkeypatch.setattr(synth, "generate_benchmark", fake)
    first = steps.ensure_benchmark("small", 3)
    second = steps.ensure_benchmark("small", 3)
    assert first == second == root / f"small-seed3-v{synth.FORMAT_VERSION}"
    assert calls == [(3, "small")]
    assert [p.name for p in root.iterdir()] == [first.name]
    # a cache of another format version (an older kidsql) is not mistaken for the current benchmark
    monkeypatch.setattr(synth, "FORMAT_VERSION", synth.FORMAT_VERSION + 1)
    assert steps.ensure_benchmark("small", 3) == root / f"small-seed3-v{synth.FORMAT_VERSION}"
    assert calls == [(3, "small"), (3, "small")]


def test_teacher_key_covers_every_setting(tmp_path):
    b = Budget(10, 4, 1e-3, 128, 32)
    key = steps.teacher_key(tmp_path, "tiny:1m", b)
    assert key == steps.teacher_key(tmp_path, "tiny:1m", Budget(10, 4, 1e-3, 128, 32))
    others = {steps.teacher_key(tmp_path / "x", "tiny:1m", b), steps.teacher_key(tmp_path, "tiny:4m", b),
              steps.teacher_key(tmp_path, "tiny:1m", Budget(11, 4, 1e-3, 128, 32)),
              steps.teacher_key(tmp_path, "tiny:1m", b, seed=1)}
    assert key not in others and len(others) == 4
    with pytest.raises(KidsqlError):
        Budget(0, 4, 1e-3, 128, 32)


def test_distill_config_gets_the_same_budget_for_every_method(tmp_path):
    b = Budget(12, 4, 5e-4, 100, 20, limit=8)
    a = steps.distill_config(tmp_path, "sft", "tiny:1m", tmp_path / "a", b)
    k = steps.distill_config(tmp_path, "kid", "tiny:1m", tmp_path / "k", b, teacher=tmp_path / "t", seed=2,
                         overrides={"kid_alpha": 0.4})
    for name in ("max_steps", "per_device_train_batch_size", "learning_rate", "max_prompt_tokens", "limit"):
        assert getattr(a, name) == getattr(k, name)
    assert (k.max_steps, k.limit, k.seed, k.kid_alpha, k.teacher) == (12, 8, 2, 0.4, str(tmp_path / "t"))
    assert k.tokenizer == str(tmp_path / "tokenizer")


def test_variants_add_ablations_and_drop_duplicates():
    cfg = BenchConfig(methods="sft,kid", alphas="0.1,0.2", strategies="random,hard", masking_only=True,
                      mle_weights="0,1")
    got = [(v.name, v.overrides) for v in variants(cfg)]
    # alpha 0.2, strategy random and MLE weight 1 are plain KID: dropped
    assert got == [("sft", {}), ("kid", {}), ("kid-alpha0.1", {"kid_alpha": 0.1}), ("kid-hard", {"kid_strategy": "hard"}),
                   ("kid-masking-only", {"kid_rewrite": "none"}), ("kid-mle0", {"mle_weight": 0.0})]
    with pytest.raises(KidsqlError):
        variants(BenchConfig(methods="sft,nope"))
    with pytest.raises(KidsqlError):
        variants(BenchConfig(methods="kid", strategies="sideways"))
    with pytest.raises(KidsqlError):
        variants(BenchConfig(methods="kid", alphas="a,b"))


def _result(variant, seed, dev, dk, step_time):
    return {"variant": variant, "method": variant, "seed": seed, "mean_step_time_s": step_time,
            "peak_memory_mb": 100.0 + seed,
            "splits": {"dev": {"ex": dev[0], "ts": dev[1], "em": 0.0}, "dev_dk": {"ex": dk[0], "ts": dk[1], "em": 0.0}},
            "curve": [[1, dev[0]]]}


def test_aggregate_score_latency_by_hand():
    results = [_result("sft", 0, (40, 30), (20, 10), 1.0), _result("sft", 1, (50, 40), (30, 20), 3.0),
               _result("kid", 0, (60, 50), (40, 30), 4.0), _result("kid", 1, (70, 60), (50, 40), 6.0)]
    rows = aggregate(results, ["dev", "dev_dk"])
    assert rows["sft"]["score"] == pytest.approx([25.0, 35.0])  # (40+30+20+10)/4, (50+40+30+20)/4
    assert rows["kid"]["score"] == pytest.approx([45.0, 55.0])
    assert rows["kid"]["latency"] == pytest.approx([2.0, 3.0])  # step time / mean SFT step time (2.0)
    assert rows["sft"]["latency"] == pytest.approx([0.5, 1.5])
    assert rows["kid"]["splits"]["dev_dk"]["ts"] == [30, 40]
    assert rows["sft"]["peak_memory_mb"] == [100.0, 101.0]
    no_sft = aggregate(results[2:], ["dev"])
    assert no_sft["kid"]["latency"] == []


def test_read_curve_keeps_the_last_point_per_step(tmp_path):
    f = tmp_path / "curve.jsonl"
    f.write_text('{"step": 2, "ex": 10.0}\n{"step": 4, "ex": 20.0}\n{"step": 4, "ex": 25.0}\n', encoding="utf-8")
    assert read_curve(f) == [[2.0, 10.0], [4.0, 25.0]]
    assert read_curve(tmp_path / "absent.jsonl") == []


def test_conclusion_states_paired_differences_and_calls_no_tie_a_win():
    from kidsql.stats import PairedDifference

    paired = {"sft": PairedDifference(5.0, (1.5, 8.5), 200, 1), "rkd": PairedDifference(-2.5, (-6.0, 1.0), 200, 1)}
    text = conclusion({"sft": 40.0, "rkd": 47.5, "kid": 45.0}, 60.0, "kid", paired)
    assert text == ("KID 45.0 EX. KID - SFT = +5.0 EX (95 % CI +1.5 to +8.5): KID better; "
                    "KID - RKD = -2.5 EX (95 % CI -6.0 to +1.0): no clear difference; teacher 60.0 EX.")
    assert "beats" not in text and "trails" not in text
    worse = {"sft": PairedDifference(-3.0, (-5.0, -1.0), 200, 1)}
    assert conclusion({"sft": 43.0, "kid": 40.0}, None, "kid", worse).endswith("KID worse; teacher not scored.")
    assert conclusion({"sft": 10.0, "rkd": 30.0}, 50.0) == "Students: SFT 10.0 EX, RKD 30.0 EX; teacher 50.0 EX."


def test_peak_memory_reset_lowers_the_high_water_mark():
    import numpy as np

    big = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    from kidsql.memory import peak_memory, reset_peak_memory

    before, kind = peak_memory()
    del big
    if "reset" not in kind or not reset_peak_memory():
        pytest.skip("no resettable peak-memory counter on this platform")
    after, _ = peak_memory()
    assert after < before - 32


def test_teacher_layers_student_is_built_once_and_other_specs_pass_through(tmp_path, monkeypatch):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
                                 num_attention_heads=2)).save_pretrained(tmp_path / "teacher")
    first = steps.resolve_student("teacher-layers:2", tmp_path / "teacher")
    assert (Path(first) / "config.json").is_file() and str(tmp_path / "cache") in first
    mtime = (Path(first) / "config.json").stat().st_mtime_ns
    assert steps.resolve_student("teacher-layers:2", tmp_path / "teacher") == first  # cached: every method/seed shares it
    assert (Path(first) / "config.json").stat().st_mtime_ns == mtime
    assert steps.resolve_student("teacher-layers:3", tmp_path / "teacher") != first
    assert steps.resolve_student("tiny:1m", tmp_path / "teacher") == "tiny:1m"
    with pytest.raises(KidsqlError, match="teacher-layers:N"):
        steps.resolve_student("teacher-layers:two", tmp_path / "teacher")


def test_goal_checks_against_hand_computed_margins():
    from kidsql.experiments.bench import goal_checks

    summary = {"sft": {"score": 40.0, "latency": 1.0}, "fkd": {"score": 45.0, "latency": 1.5},
               "rkd": {"score": 44.0, "latency": 1.6}, "seqkd": {"score": 41.0, "latency": 1.1},
               "gkd-rkl": {"score": 48.5, "latency": 3.0}, "kid": {"score": 47.5, "latency": 1.76}}
    margin = next(c for c in goal_checks(summary) if "gold" in c["goal"])
    assert margin["value"] == pytest.approx(2.5) and margin["met"] and "(fkd)" in margin["detail"]
    gkd = next(c for c in goal_checks(summary) if "within" in c["goal"])
    assert gkd["value"] == pytest.approx(-1.0) and gkd["met"]  # exactly 1 point below: within
    rkd = next(c for c in goal_checks(summary) if "rkd latency" in c["goal"])
    assert rkd["value"] == pytest.approx(1.1) and rkd["met"]
    below = next(c for c in goal_checks(summary) if "below" in c["goal"])
    assert below["value"] == pytest.approx(1.76 / 3.0) and below["met"]
    worse = goal_checks({**summary, "kid": {"score": 46.0, "latency": 1.9}})
    assert [c["met"] for c in worse] == [False, False, False, True]
    missing = goal_checks({"kid": {"score": 50.0, "latency": 1.0}})
    assert [c["met"] for c in missing] == [None, None, None, None]
