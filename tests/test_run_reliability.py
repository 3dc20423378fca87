"""Issue 15, the training/CLI half: every bad value or file is one line and exit code 2 before any work, a
folder holding a run is resumed, reused or refused (never restarted silently), a run folder is locked, the
tokenizer is checked against the model on every path, and a killed bench leaves no training child behind.

Micro models (a few thousand parameters) and 1-3 training steps keep each test to seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kidsql.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import build_tokenizer, load_bench_tokenizer, tiny_llama, write_benchmark, write_model_config  # noqa: E402


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("rel") / "bench")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    return "tiny:" + str(write_model_config(tmp_path_factory.mktemp("cfg")))


@pytest.fixture(scope="module")
def saved_model(bench, tmp_path_factory) -> Path:
    """A micro Llama and the benchmark's tokenizer saved the way kidsql saves models (with the vocabulary stamp)."""
    from kidsql.models import save_model

    tok = load_bench_tokenizer(bench)
    return save_model(tiny_llama(tok, seed=4), tok, tmp_path_factory.mktemp("model") / "m")


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def one_line_error(capsys, *needles: str) -> str:
    """The command's error: one `kidsql <command>: error:` line, the last of stderr (progress bars of loading the
    models that were fine may come before it), no traceback, containing every needle."""
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("kidsql ") and ": error: " in line]
    assert "Traceback" not in err and len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    for needle in needles:
        assert needle in errors[0], (needle, err)
    return errors[0]


def train_args(spec: str, bench: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", spec, "--data", str(bench), "--out", str(out), "--max_steps", "2",
            "--per_device_train_batch_size", "2", "--logging_steps", "1", "--save_steps", "1", *extra]


# ------------------------------------------------------------------------- findings 6 and 7: option values


@pytest.mark.parametrize("command, option, value, valid", [
    ("train", "--max_steps", "0", "-1 to train for num_train_epochs"),
    ("train", "--max_steps", "-5", "-1 to train for num_train_epochs"),
    ("distill", "--per_device_train_batch_size", "0", "integer >= 1"),
    ("distill", "--learning_rate", "nan", "finite number > 0"),
    ("distill", "--learning_rate", "inf", "finite number > 0"),
    ("distill", "--gradient_accumulation_steps", "0", "integer >= 1"),
    ("distill", "--lr_scheduler_type", "bogus", "one of linear, cosine"),
    ("distill", "--max_prompt_tokens", "0", "integer >= 1"),
    ("distill", "--mle_weight", "-1", "finite number >= 0"),
    ("distill", "--limit", "0", "integer >= 1"),
    ("demo", "--eval_limit", "0", "integer >= 1"),
    ("demo", "--max_prompt_tokens", "0", "integer >= 1"),
    ("bench", "--student_steps", "0", "integer >= 1"),
    ("bench", "--bench_size", "huge", "one of small, full, cpu, cpu-medium"),
    ("bench", "--mle_weights", "-1", "finite number >= 0"),
])
def test_bad_option_values_are_one_line_errors_with_the_valid_range(command, option, value, valid, tmp_path, capsys):
    out_option = "--out" if command != "distill" else "--output_dir"
    args = [command, option, value, out_option, str(tmp_path / "out")]
    if command in ("train", "distill"):
        args += ["--data", str(tmp_path), "--teacher" if command == "distill" else "--model", "tiny:1m"]
    assert main(args) == 2
    one_line_error(capsys, option, valid)
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--max-new-tokens", "0"), ("--limit", "0")])
def test_predict_values_are_checked_before_loading(option, value, tmp_path, capsys) -> None:
    assert main(["predict", "--model", str(tmp_path / "none"), "--data", str(tmp_path), option, value,
                 "--out", str(tmp_path / "p.sql")]) == 2
    one_line_error(capsys, f"{option} {value}", "integer >= 1")


def test_config_dataclasses_check_themselves_wherever_they_are_built() -> None:
    from kidsql.experiments.bench import BenchConfig
    from kidsql.distill.config import DistillConfig
    from kidsql.errors import KidsqlError

    with pytest.raises(KidsqlError, match="--gradient_accumulation_steps 0"):
        DistillConfig(gradient_accumulation_steps=0)
    with pytest.raises(KidsqlError, match="unknown method 'kdi'"):
        DistillConfig(method="kdi")
    with pytest.raises(KidsqlError, match="--seeds 0"):
        BenchConfig(seeds=0)
    assert DistillConfig(max_steps=-1).max_steps == -1 and BenchConfig(eval_limit=None).eval_limit is None


def test_a_binary_config_file_is_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    assert main(["train", "--config", str(path)]) == 2
    one_line_error(capsys, "run.yaml", "not a text file")


# ----------------------------------------------------------------------------- finding 8: messages


def test_missing_data_names_the_data_folder(bench, spec, tmp_path, capsys) -> None:
    assert main(train_args(spec, tmp_path / "missing", tmp_path / "out")) == 2
    one_line_error(capsys, "--data", str(tmp_path / "missing"), "no such file or folder")


def test_synth_accepts_every_size_the_generator_has() -> None:
    import argparse

    from kidsql.commands import data
    from kidsql.data.synth import SIZES

    parser = argparse.ArgumentParser()
    data.add_arguments(parser)
    synth = next(a for a in parser._subparsers._group_actions[0].choices["synth"]._actions if a.dest == "size")
    assert set(synth.choices) == set(SIZES) and "cpu-medium" in synth.choices


def test_local_looking_model_paths_fail_at_once_without_the_hub(bench, tmp_path, monkeypatch, capsys) -> None:
    """`./x`, `/abs/x`, `x/y/z` and `<existing folder>/x` are local paths: missing, they are an error before any
    hub request (the transformers loaders are replaced by a function that fails the test)."""
    import transformers

    from kidsql.validate import looks_local

    def no_hub(*a, **k):  # noqa: ANN002, ANN003
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_hub)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_hub)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for missing in ("./x", str(tmp_path / "x"), "x/y/z", "runs/teacher", "~/no-such-model-here"):
        assert looks_local(missing), missing
        assert main(["predict", "--model", missing, "--data", str(bench), "--out", str(tmp_path / "p.sql")]) == 2
        one_line_error(capsys, "not found")
    for hub_id in ("gpt2", "Qwen/Qwen1.5-0.5B", "meta-llama/Llama-3.2-1B"):
        assert not looks_local(hub_id), hub_id


# ------------------------------------------------------------- finding 6: weights and output paths


@pytest.mark.parametrize("size", ["empty", "half"])
def test_truncated_weights_are_one_line_on_every_command(bench, saved_model, size, tmp_path, capsys, cache) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(saved_model, broken)
    weights = broken / "model.safetensors"
    blob = weights.read_bytes()
    weights.write_bytes(b"" if size == "empty" else blob[: len(blob) // 2])
    common = ["--data", str(bench), "--max_steps", "1", "--per_device_train_batch_size", "2"]
    runs = [
        ["train", "--model", str(broken), "--out", str(tmp_path / "t"), *common],
        ["distill", "--method", "rkd", "--teacher", str(saved_model), "--student", str(broken),
         "--output_dir", str(tmp_path / "d"), *common],
        ["distill", "--method", "rkd", "--teacher", str(broken), "--student", str(saved_model),
         "--output_dir", str(tmp_path / "d2"), *common],
        ["predict", "--model", str(broken), "--data", str(bench), "--out", str(tmp_path / "p.sql")],
        ["demo", "--data", str(bench), "--teacher", str(broken), "--teacher_steps", "0", "--out", str(tmp_path / "m")],
        ["bench", "--data", str(bench), "--teacher", str(broken), "--teacher_steps", "0", "--splits", "dev",
         "--out", str(tmp_path / "b")],
    ]
    for args in runs:
        assert main(args) == 2, args
        one_line_error(capsys, str(weights), "truncated")


def test_output_paths_are_checked_before_any_work(bench, saved_model, spec, tmp_path, capsys) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for command, option in (("train", "--out"), ("distill", "--output_dir"), ("demo", "--out"), ("bench", "--out"),
                            ("data synth", "--out")):
        for target, words in ((a_file, "is a file"), (a_file / "sub", "cannot be created")):
            args = [*command.split(), option, str(target)]
            if command in ("train", "distill"):
                args += ["--data", str(bench), "--model" if command == "train" else "--student", spec]
            assert main(args) == 2, args
            one_line_error(capsys, option, str(target), words)
    assert main(["predict", "--model", str(saved_model), "--data", str(bench), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "--out", "is a folder")
    assert main(["predict", "--model", str(saved_model), "--data", str(bench), "--out", str(a_file / "p.sql")]) == 2
    one_line_error(capsys, "--out", "cannot be created")
    assert main(["predict", "--model", str(saved_model), "--data", str(bench), "--out", str(a_file)]) == 2
    one_line_error(capsys, "already exists", "--force")
    assert a_file.read_text() == "x"


def test_writable_folder_detects_a_read_only_folder(tmp_path) -> None:
    from kidsql.errors import KidsqlError
    from kidsql.validate import writable_folder

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permission bits
            pytest.skip("running as root: a chmod'ed folder stays writable")
        with pytest.raises(KidsqlError, match="cannot write into"):
            writable_folder(ro / "run", "--out")
    finally:
        ro.chmod(0o700)


# ----------------------------------------------------------------------- finding 4: tokenizer and model


def test_tokenizer_must_match_the_model_on_every_path(bench, saved_model, spec, tmp_path, capsys) -> None:
    import shutil

    from kidsql.errors import KidsqlError
    from kidsql.models import load_model

    foreign_tok = build_tokenizer(["completely different words here", "SELECT nothing FROM nowhere"])
    foreign = tmp_path / "foreign_tok"
    foreign_tok.save_pretrained(foreign)
    # a model folder whose tokenizer.json was replaced by another one: predict and train refuse, naming the file
    swapped = tmp_path / "swapped"
    shutil.copytree(saved_model, swapped)
    shutil.copy(foreign / "tokenizer.json", swapped / "tokenizer.json")
    assert main(["predict", "--model", str(swapped), "--data", str(bench), "--out", str(tmp_path / "p.sql")]) == 2
    one_line_error(capsys, str(swapped / "tokenizer.json"), "kidsql_vocab.json")
    assert main(train_args(str(swapped), bench, tmp_path / "t1")) == 2
    one_line_error(capsys, "tokenizer.json", "not the one")
    # --tokenizer with another vocabulary than the model's
    assert main(train_args(str(saved_model), bench, tmp_path / "t2", "--tokenizer", str(foreign))) == 2
    one_line_error(capsys, str(foreign / "tokenizer.json"), "not the one")
    assert not (tmp_path / "t1").exists() and not (tmp_path / "t2").exists()
    # same vocabulary, another bos token: the special ids are checked too
    tok = load_bench_tokenizer(bench)
    tok.bos_token = "</s>"
    with pytest.raises(KidsqlError, match="special token ids"):
        load_model(str(saved_model), tok)

    # a folder without the stamp (a model kidsql did not save): sizes decide; padding rows are fine
    tok = load_bench_tokenizer(bench)
    n = len(tok)
    for rows, ok in ((n, True), (-(-n // 64) * 64 + 64, True), (n - 1, False), (n + 1 if (n + 1) % 8 else n + 2, False)):
        folder = tmp_path / f"rows{rows}"
        model = tiny_llama(tok)
        model.resize_token_embeddings(rows)
        model.save_pretrained(folder)
        if ok:
            load_model(str(folder), tok)
        else:
            with pytest.raises(KidsqlError, match=rf"{n} tokens, but the input embedding .* {rows} rows"):
                load_model(str(folder), tok)
    # ... and a folder with its own tokenizer but no stamp is compared with the tokenizer given
    folder = tmp_path / "own_tok"
    tiny_llama(tok).save_pretrained(folder)
    foreign_tok.save_pretrained(folder)
    with pytest.raises(KidsqlError, match="differs from .*own_tok/tokenizer.json"):
        load_model(str(folder), tok)


# ---------------------------------------------------------------------------------- finding 5: resume


def test_a_folder_holding_a_run_is_resumed_reused_or_refused(bench, spec, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(train_args(spec, bench, out)) == 0
    first = json.loads((out / "train_result.json").read_text())
    assert first["steps"] == 2 and (out / "final" / "kidsql_vocab.json").is_file()
    capsys.readouterr()

    # a finished run: refused without a word of how, reused with --resume auto, retrained with --force
    assert main(train_args(spec, bench, out)) == 2
    one_line_error(capsys, str(out), "finished run", "--force", "--resume auto")
    stamp = (out / "train_result.json").stat().st_mtime_ns
    assert main(train_args(spec, bench, out, "--resume", "auto")) == 0
    assert "reusing the finished run" in capsys.readouterr().out
    assert (out / "train_result.json").stat().st_mtime_ns == stamp  # nothing trained

    # a killed run (checkpoints, no train_result.json): refused, then continued from its last checkpoint
    (out / "train_result.json").unlink()
    import shutil

    shutil.rmtree(out / "final")
    assert main(train_args(spec, bench, out)) == 2
    one_line_error(capsys, "interrupted run", "checkpoint-2", "--resume auto", "--force")
    assert main(train_args(spec, bench, out, "--resume", "auto", "--max_steps", "3")) == 0
    resumed = json.loads((out / "train_result.json").read_text())
    assert resumed["steps"] == 3
    # the log holds steps 1-2 from the checkpoint and step 3 from the resumed part
    assert [h["step"] for h in resumed["log_history"] if "loss" in h] == [1, 2, 3]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]

    # --force starts over: the old checkpoints go, a fresh 2-step run is written
    assert main(train_args(spec, bench, out, "--force")) == 0
    again = json.loads((out / "train_result.json").read_text())
    assert again["steps"] == 2 and sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert [h["loss"] for h in again["log_history"] if "loss" in h] == pytest.approx(
        [h["loss"] for h in first["log_history"] if "loss" in h], rel=1e-6)  # deterministic: the first run again


def test_a_demo_folder_with_students_of_a_killed_demo_is_refused_without_force(tmp_path, capsys) -> None:
    (tmp_path / "demo" / "students" / "sft" / "checkpoint-50").mkdir(parents=True)
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 2
    one_line_error(capsys, str(tmp_path / "demo" / "students"), "interrupted demo", "--force")


def test_resume_from_a_folder_that_is_not_a_checkpoint_is_refused(bench, spec, tmp_path, capsys) -> None:
    assert main(train_args(spec, bench, tmp_path / "o", "--resume", str(tmp_path))) == 2
    one_line_error(capsys, "--resume", "not a checkpoint folder")


# ----------------------------------------------------------------------------------- finding 3: locks


def test_a_locked_run_folder_refuses_a_second_run(bench, spec, tmp_path, capsys) -> None:
    from kidsql.run_folder import locked

    for command in ("train", "demo", "bench"):
        out = tmp_path / command
        with locked(out):
            args = train_args(spec, bench, out) if command == "train" else [command, "--out", str(out)]
            assert main(args) == 2
            one_line_error(capsys, str(out), f"another kidsql run (pid {os.getpid()})", "wait for it")
            assert list(out.iterdir()) == [out / ".kidsql.lock"]  # the refused run wrote nothing
    # released with its holder, also when the holder dies: a lock taken by a killed process does not last
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom kidsql.run_folder import locked\n"
                               f"with locked({str(tmp_path / 'x')!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        from kidsql.errors import KidsqlError

        with pytest.raises(KidsqlError, match=f"pid {holder.pid}"), locked(tmp_path / "x"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with locked(tmp_path / "x"):
        pass


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_bench_kills_its_training_child(bench, saved_model, spec, tmp_path, cache) -> None:
    """SIGKILL of `kidsql bench` while its spawned child trains: the child dies within seconds, both locks are
    free at once, so a rerun can resume (without the guard the child goes on writing into the run folder)."""
    from kidsql.errors import KidsqlError
    from kidsql.run_folder import LOCK_NAME, locked

    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "kidsql.cli", "bench", "--data", str(bench), "--teacher", str(saved_model),
           "--teacher_steps", "0", "--student", spec, "--methods", "sft", "--seeds", "1", "--splits", "dev",
           "--student_steps", "100000", "--batch_size", "2", "--save_steps", "100000", "--curve_every", "0",
           "--eval_limit", "2", "--eval_workers", "1", "--max_new_tokens", "4", "--max_prompt_tokens", "96",
           "--out", str(out)]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    child_lock = out / "runs" / "sft" / "seed0" / "train" / LOCK_NAME
    child = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and parent.poll() is None:
            text = child_lock.read_text().strip() if child_lock.is_file() else ""
            if text.isdigit() and int(text) != parent.pid and _alive(int(text)):
                child = int(text)
                break
            time.sleep(0.2)
        assert child is not None, parent.stderr.read() if parent.poll() is not None else "no child within 240 s"
        time.sleep(1.0)  # into its training
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        gone = time.monotonic() + 15
        while _alive(child) and time.monotonic() < gone:
            time.sleep(0.1)
        assert not _alive(child), "the training child outlived the killed bench"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
    free = time.monotonic() + 15  # the kernel drops a dead holder's flock once its files are closed
    while True:
        try:
            with locked(out), locked(child_lock.parent):  # nobody holds them any more
                break
        except KidsqlError:
            if time.monotonic() > free:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_a_failing_bench_child_prints_one_line_not_a_traceback(bench, saved_model, tmp_path, cache, capfd) -> None:
    """A bad student folder fails inside the spawned run: its error reaches the terminal as one line, and the
    bench's own error says which run failed."""
    import shutil

    from kidsql.experiments.bench import BenchConfig, Variant, _isolated_run
    from kidsql.errors import KidsqlError

    broken = tmp_path / "student"
    shutil.copytree(saved_model, broken)
    (broken / "model.safetensors").write_bytes(b"")
    cfg = BenchConfig(out=str(tmp_path / "b"), data=str(bench), student_steps=1, batch_size=2, curve_every=0,
                      eval_limit=2, eval_workers=1, max_new_tokens=4)
    capfd.readouterr()
    with pytest.raises(KidsqlError, match=r"the run of sft \(seed 0\) failed \(exit code 2"):
        _isolated_run(cfg, bench, saved_model, str(broken), ["dev"], Variant("sft", "sft"), 0)
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith("kidsql bench: error: ") and str(broken / "model.safetensors") in errors[0]
