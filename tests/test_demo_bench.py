"""`kidsql demo` and `kidsql bench` end to end on the small embedded benchmark with micro models and a few steps.

The numbers in the reports must be the evaluator's: the saved predictions are re-scored with
`kidsql.evaluate.evaluate` and compared. Resume is checked by counting trainings, not by timing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kidsql.cli import main
from kidsql.experiments import steps

MICRO = ("hidden_size: 32\nintermediate_size: 64\nnum_hidden_layers: 2\nnum_attention_heads: 4\n"
         "num_key_value_heads: 4\nmax_position_embeddings: 512\n")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private kidsql cache (benchmark + teacher shared by the tests of this module) and a micro model spec."""
    root = tmp_path_factory.mktemp("kidsql")
    old = os.environ.get("KIDSQL_CACHE")
    os.environ["KIDSQL_CACHE"] = str(root / "cache")
    (root / "micro.yaml").write_text(MICRO, encoding="utf-8")
    spec = f"tiny:{root / 'micro.yaml'}"
    tiny = ["--teacher", spec, "--student", spec, "--teacher_steps", "3", "--student_steps", "2", "--batch_size", "2",
            "--max_prompt_tokens", "96", "--max_sql_tokens", "32", "--max_new_tokens", "8", "--train_limit", "16",
            "--eval_limit", "5", "--eval_workers", "1", "--bench_size", "small"]
    yield root, tiny
    if old is None:
        os.environ.pop("KIDSQL_CACHE", None)
    else:
        os.environ["KIDSQL_CACHE"] = old


def _rescore(bench: Path, split: str, pred_file: str, limit: int) -> dict:
    from kidsql.evaluate import evaluate

    examples, b = steps.split_examples(bench, split, limit)
    preds = json.loads(Path(pred_file).read_text(encoding="utf-8"))
    assert len(preds) == len(examples) == limit
    return evaluate(examples, preds, bench / "database", suite_dir=bench, schemas=b.schemas, workers=1,
                    show_progress=False).summary()["all"]


@pytest.mark.slow
def test_demo_end_to_end(env, capsys):
    root, tiny = env
    out = root / "demo"
    tiny = [*tiny, "--student_warmup_steps", "1"]
    assert main(["demo", "--out", str(out), *tiny]) == 0
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(data["students"]) == {"sft", "rkd", "kid"}
    # every student started from the one shared warm-up, and the conclusion states paired differences
    assert "student warm-up" in capsys.readouterr().err
    for other in ("sft", "rkd"):
        p = data["paired"][other]["vs_kid"]
        mine = data["students"]["kid"]["ex_per_example"]
        theirs = data["students"][other]["ex_per_example"]
        assert p["diff"] == pytest.approx(100 * (sum(theirs) - sum(mine)) / len(mine))
        assert p["ci95"][0] <= p["diff"] <= p["ci95"][1]
        assert f"KID - {other.upper()} = {0.0 - p['diff']:+.1f} EX" in data["conclusion"]
        if p["ci95"][0] <= 0 <= p["ci95"][1]:
            assert "no clear difference" in data["conclusion"].split(f"KID - {other.upper()}")[1].split(";")[0]
    bench = Path(data["benchmark"])
    for name, entry in [("teacher", data["teacher"]), *data["students"].items()]:
        again = _rescore(bench, "dev", entry["predictions"], 5)
        for metric in ("ex", "ts", "em"):
            assert entry["metrics"][metric] == pytest.approx(again[metric]), (name, metric)
    assert data["students"]["sft"]["step_time_vs_sft"] == pytest.approx(1.0)
    assert data["students"]["kid"]["steps"] == 2
    md = (out / "report.md").read_text(encoding="utf-8")
    assert data["conclusion"] in md and "| student" in md
    assert data["conclusion"].startswith("KID ") and "95 % CI" in data["conclusion"]
    assert data["environment"]["torch_version"] and data["environment"]["cpu_count"] == os.cpu_count()
    # a second demo into the same folder is refused without --force; the cached teacher is reused with it
    assert main(["demo", "--out", str(out), *tiny]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["demo", "--out", str(out), "--methods", "sft", "--force", *tiny]) == 0
    assert "reusing the cached teacher" in capsys.readouterr().out
    assert set(json.loads((out / "report.json").read_text(encoding="utf-8"))["students"]) == {"sft"}


@pytest.mark.slow
def test_demo_uses_a_given_teacher_folder_as_is_with_zero_teacher_steps(env, capsys):
    root, tiny = env
    first = json.loads(_demo(root / "demo_given_a", tiny).read_text(encoding="utf-8"))
    teacher_dir = first["teacher"]["model_dir"]
    given = json.loads(_demo(root / "demo_given_b", [*tiny, "--teacher", teacher_dir, "--teacher_steps", "0"])
                       .read_text(encoding="utf-8"))
    assert given["teacher"]["model_dir"] == teacher_dir  # not fine-tuned again into a new folder
    assert json.loads(Path(given["teacher"]["predictions"]).read_text(encoding="utf-8")) == \
        json.loads(Path(first["teacher"]["predictions"]).read_text(encoding="utf-8"))
    assert "used as given" in (root / "demo_given_b" / "report.md").read_text(encoding="utf-8")
    # a tiny: spec cannot be "used as is"
    assert main(["demo", "--out", str(root / "demo_given_c"), *tiny, "--teacher_steps", "0"]) == 2
    assert "--teacher_steps 0" in capsys.readouterr().err


def _demo(out: Path, args: list[str]) -> Path:
    assert main(["demo", "--out", str(out), "--methods", "sft", *args]) == 0
    return out / "report.json"


@pytest.mark.slow
def test_bench_end_to_end_and_resume(env, monkeypatch, capsys):
    root, tiny = env
    out = root / "bench"
    args = ["bench", "--out", str(out), "--methods", "sft,kid", "--seeds", "1", "--splits", "dev,dev_dk",
            "--curve_every", "1", "--curve_size", "3", *tiny]
    trainings = []
    real = steps.train_student

    def counting(*a, **k):
        trainings.append(a[1])
        return real(*a, **k)

    monkeypatch.setattr(steps, "train_student", counting)
    assert main(args) == 0  # each run in its own spawned process (the default): this process trains nothing
    assert trainings == [] and "2 run(s) trained, 0 reused" in capsys.readouterr().out
    args.append("--no_isolate_runs")  # from here on in this process, where the trainings can be counted
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    bench = Path(data["benchmark"])
    for run in data["runs"]:
        for split in ("dev", "dev_dk"):
            again = _rescore(bench, split, run["splits"][split]["predictions"], 5)
            assert run["splits"][split]["ex"] == pytest.approx(again["ex"])
            assert run["splits"][split]["ts"] == pytest.approx(again["ts"])
        assert [p[0] for p in run["curve"]] == [1.0, 2.0]  # a dev-EX point every step
        assert not list((out / "runs" / run["variant"] / "seed0" / "train").glob("checkpoint-*"))
    kid = data["variants"]["kid"]
    run = next(r for r in data["runs"] if r["variant"] == "kid")
    expected = (run["splits"]["dev"]["ex"] + run["splits"]["dev"]["ts"] + run["splits"]["dev_dk"]["ex"]
                + run["splits"]["dev_dk"]["ts"]) / 4
    assert kid["summary"]["score"] == pytest.approx(expected)
    # the paired section: SFT minus KID over the same dev examples (one seed), by hand, with its interval
    sft_run = next(r for r in data["runs"] if r["variant"] == "sft")
    a, b = sft_run["splits"]["dev"]["ex_per_example"], run["splits"]["dev"]["ex_per_example"]
    pair = data["paired"]["sft"]["vs_kid"]
    assert pair["diff"] == pytest.approx(100 * (sum(a) - sum(b)) / len(a)) and pair["n_examples"] == 5
    assert pair["ci95"][0] <= pair["diff"] <= pair["ci95"][1] and "kid" not in data["paired"].get("kid", {})
    assert "dev EX vs kid" in (out / "report.md").read_text(encoding="utf-8")
    sft_time = next(r for r in data["runs"] if r["variant"] == "sft")["mean_step_time_s"]
    assert kid["summary"]["latency"] == pytest.approx(run["mean_step_time_s"] / sft_time)
    for png in ("score_vs_latency.png", "learning_curves.png"):
        blob = (out / png).read_bytes()
        assert blob[:8] == PNG_MAGIC and len(blob) > 5000
    import kidsql
    import torch

    assert (data["environment"]["kidsql_version"], data["environment"]["torch_version"]) == (kidsql.__version__, torch.__version__)
    assert data["environment"]["cpu_count"] == os.cpu_count() and data["environment"]["date"][:2] == "20"

    # re-run with one ablation added: the two finished runs are skipped, only the new variant trains
    trainings.clear()
    assert main([*args, "--masking-only"]) == 0
    assert trainings == ["kid"]
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(data["variants"]) == {"sft", "kid", "kid-masking-only"}
    assert data["variants"]["kid-masking-only"]["overrides"] == {"kid_rewrite": "none"}

    # a new split is scored from the saved models, without training anything
    trainings.clear()
    assert main([*args, "--masking-only", "--splits", "dev,dev_dk,dev_syn"]) == 0
    assert trainings == []
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    for run in data["runs"]:
        again = _rescore(bench, "dev_syn", run["splits"]["dev_syn"]["predictions"], 5)
        assert run["splits"]["dev_syn"]["ex"] == pytest.approx(again["ex"])

    # another budget in the same folder is refused before anything runs: its runs would not be comparable
    trainings.clear()
    report = (out / "report.json").read_bytes()
    at = tiny.index("--student_steps") + 1
    changed = [*args[: args.index("--student_steps") + 1], "3", *args[args.index("--student_steps") + 2:]]
    assert tiny[at] == "2" and main(changed) == 2
    err = capsys.readouterr().err
    assert "bench_setup.json" in err and "student_steps" in err and "--out" in err
    assert trainings == [] and (out / "report.json").read_bytes() == report


def test_bench_refuses_to_mix_setups_but_accepts_more_runs(tmp_path) -> None:
    from kidsql.experiments.bench import BenchConfig, check_same_setup
    from kidsql.errors import KidsqlError

    out = str(tmp_path / "b")
    check_same_setup(BenchConfig(out=out, methods="sft,kid", seeds=3))
    # more methods, seeds, ablations, splits, other worker counts: same setup, resumable
    check_same_setup(BenchConfig(out=out, methods="sft,kid,rkd", seeds=5, alphas="0.1", splits="dev",
                                 eval_workers=1, isolate_runs=False))
    # a folder made before a setup field existed counts as that field's default
    import json as _json

    setup_file = tmp_path / "b" / "bench_setup.json"
    older = _json.loads(setup_file.read_text(encoding="utf-8"))
    older.pop("student_warmup_steps")
    setup_file.write_text(_json.dumps(older), encoding="utf-8")
    check_same_setup(BenchConfig(out=out))
    for other, field_name in ((dict(student_warmup_steps=150), "student_warmup_steps"),
                              (dict(student_steps=300), "student_steps"), (dict(teacher="tiny:1m"), "teacher"),
                              (dict(bench_size="cpu-medium"), "bench_size"), (dict(eval_limit=None), "eval_limit")):
        with pytest.raises(KidsqlError, match=rf"bench_setup\.json: .*differs in: {field_name}\)"):
            check_same_setup(BenchConfig(out=out, **other))


def test_bench_kid_options_make_one_validated_variant_each() -> None:
    from kidsql.experiments.bench import BenchConfig, variants
    from kidsql.errors import KidsqlError

    got = variants(BenchConfig(methods="sft,kid", kid_options="mle_on=imperfect, alpha=0.1,kid_rewrite=sample"))
    assert [(v.name, v.overrides) for v in got] == [
        ("sft", {}), ("kid", {}), ("kid-mle-on-imperfect", {"kid_mle_on": "imperfect"}),
        ("kid-alpha-0.1", {"kid_alpha": 0.1}), ("kid-rewrite-sample", {"kid_rewrite": "sample"})]
    # a method-level option: KID's sequences with another divergence
    got = variants(BenchConfig(methods="kid", kid_options="divergence=fkl"))
    assert [(v.name, v.overrides) for v in got] == [("kid", {}), ("kid-divergence-fkl", {"divergence": "fkl"})]
    from kidsql.distill.methods import get_method

    assert get_method("kid", **got[1].overrides).divergence == "fkl" and get_method("kid").divergence == "rkl"
    # the default spelled out is plain KID, dropped as a duplicate
    assert [v.name for v in variants(BenchConfig(methods="kid", kid_options="mle_on=clean"))] == ["kid"]
    for bad, message in (("mle_on", "field=value"), ("colour=red", "kid_colour"), ("mle_on=dirty", "imperfect or clean")):
        with pytest.raises(KidsqlError, match=message):
            variants(BenchConfig(methods="kid", kid_options=bad))
