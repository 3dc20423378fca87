"""kidsql.files: the atomic write under concurrency and failure, JSON, and cache keys that stay the keys of the
caches already on users' disks (pinned to the values the previous code computed for the same inputs)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from pathlib import Path

import pytest

from kidsql.errors import KidsqlError
from kidsql.files import build_folder_once, cache_key, file_sha256, hex_digest, read_json, write_atomic, write_json

sys.path.insert(0, str(Path(__file__).parent))
from _tiny import load_bench_tokenizer, write_benchmark  # noqa: E402


def test_write_atomic_text_bytes_and_writer(tmp_path):
    assert write_atomic(tmp_path / "a" / "t.txt", "héllo").read_bytes() == "héllo".encode("utf-8")
    assert write_atomic(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert write_atomic(tmp_path / "c.bin", lambda fh: fh.write(b"xyz")).read_bytes() == b"xyz"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.bin", "c.bin", "t.txt"]  # no temp file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = write_atomic(tmp_path / "r.json", "old")

    def half(fh):  # noqa: ANN001, ANN202
        fh.write(b"new, half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(path, half)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_concurrent_writers_of_one_file_never_mix(tmp_path):
    """Eight threads write one path 25 times each; a shared temp name would interleave or lose a rename."""
    path = tmp_path / "cache.json"
    payloads = [json.dumps([k] * 20_000) for k in range(8)]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for _ in range(25):
                write_atomic(path, payloads[k])
                assert path.read_text() in payloads
        except BaseException as err:  # noqa: BLE001 - re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert path.read_text() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["cache.json"]


def test_written_files_get_the_usual_permissions(tmp_path):
    """Same mode as a plain open() (the umask's), not mkstemp's owner-only 0600."""
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert write_atomic(tmp_path / "atomic", "x").stat().st_mode == plain.stat().st_mode


def test_json_roundtrip_and_one_line_errors(tmp_path):
    path = write_json(tmp_path / "sub" / "r.json", {"x": [1, 2], "p": tmp_path, "é": "ü"})
    assert read_json(path) == {"x": [1, 2], "p": str(tmp_path), "é": "ü"}
    assert path.read_text(encoding="utf-8") == '{\n "x": [\n  1,\n  2\n ],\n "p": "' + str(tmp_path) + '",\n "é": "ü"\n}\n'
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(KidsqlError, match="bad.json: malformed JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(KidsqlError, match="missing.json: file not found"):
        read_json(tmp_path / "missing.json")


def test_build_folder_once_keeps_the_first_finished_copy(tmp_path):
    final = tmp_path / "f"
    build_folder_once(final, lambda d: (d / "marker").write_text("first"), marker="marker")
    build_folder_once(final, lambda d: (d / "marker").write_text("second"), marker="marker")  # lost the race
    assert (final / "marker").read_text() == "first"
    with pytest.raises(ValueError):
        build_folder_once(tmp_path / "g", lambda d: (_ for _ in ()).throw(ValueError("boom")), marker="m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # the failed build's temp folder is gone


def test_digests_against_known_values(tmp_path):
    # sha256("{}") and sha1("abc") as printed by coreutils' sha256sum / sha1sum
    assert cache_key({}, None) == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert cache_key({}) == "44136fa355b3678a"
    assert hex_digest("abc", algorithm="sha1") == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert hex_digest(["a", b"b", "c"], 20, algorithm="sha1") == "a9993e364706816aba3e25717850c26c9cd0d89d"[:20]
    assert cache_key({"a": 1, "b": [2, 3]}) == cache_key({"b": [2, 3], "a": 1})  # canonical: key order is no identity
    assert cache_key({"a": 1}) != cache_key({"a": 2})
    big = tmp_path / "w.bin"
    big.write_bytes(os.urandom(3 * (1 << 20) + 17))  # crosses the 1 MiB block boundary
    assert file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- keys of caches already on disk
# The literals pin the keys: a change here makes every user's cached teachers and warm-ups train again, so it is
# made on purpose (the budget's fields took DistillConfig's names), never by a refactor.


def test_teacher_and_warmup_keys_are_pinned(monkeypatch):
    import kidsql
    from kidsql.experiments.config import Budget
    from kidsql.experiments.steps import teacher_key
    from kidsql.experiments.warmup import warmup_key

    monkeypatch.setattr(kidsql, "__version__", "0.0-test")
    budget = Budget(max_steps=10, per_device_train_batch_size=4, learning_rate=1e-3, max_prompt_tokens=64, max_sql_tokens=32)
    assert teacher_key(Path("/nonexistent/bench"), "tiny:3m", budget, 3) == "3555b372abbb4b7c"
    over = {"split": "train", "use_evidence": True, "lora": True}
    assert teacher_key(Path("/nonexistent/bench"), "tiny:3m", budget, 3, over) == "b5a8ef5ad3b05eb0"
    assert warmup_key(Path("/nonexistent/bench"), "tiny:1m", budget, 2) == "bd1decac73dda135"


def test_teacher_logit_cache_key_and_vocab_stamp_are_unchanged():
    from kidsql.distill.teacher_cache import cache_key as teacher_cache_key
    from kidsql.models import vocab_fingerprint

    features = [{"input_ids": [1, 2, 3], "sql_mask": [0, 1, 1]}, {"input_ids": [4, 5], "sql_mask": [0, 1]}]
    assert teacher_cache_key(fingerprint="t|x", features=features, k=8, temperature=1.0,
                             vocab_size=50) == "340fd3a6a7664f44d499b8df"

    class Tok:
        bos_token_id, eos_token_id, unk_token_id = 0, 1, None

        def get_vocab(self) -> dict[str, int]:
            return {"<s>": 0, "</s>": 1, "é": 2, "a": 3}

        def __len__(self) -> int:
            return 4

    assert vocab_fingerprint(Tok())["sha256"] == "9e4699f7458a52ea93e7a3c791322de0e40c92b253b997961ed28fc2f05dd68f"


def test_teacher_sequences_cached_by_the_previous_code_are_read(tmp_path):
    from kidsql.distill.methods import GenerationOptions
    from kidsql.distill.sequences import teacher_generated_sql

    gen = GenerationOptions(max_new_tokens=5, do_sample=False, batch_size=2)
    (tmp_path / "teacher_sequences").mkdir()
    (tmp_path / "teacher_sequences" / "f4dbed40c0d33f84268b5937.json").write_text('["a", "b"]')
    # no teacher: the call must be answered from the file alone
    assert teacher_generated_sql(None, None, ["p1", "p2é"], gen, fingerprint="t|x", cache_dir=tmp_path) == ["a", "b"]


def test_prompt_value_index_and_student_init_keys_follow_the_previous_formulas(tmp_path, monkeypatch):
    """Keys over paths and mtimes cannot be literals: each is checked against the previous code's expression."""
    from kidsql.data import values
    from kidsql.prompts import PromptOptions
    from kidsql.split_prompts import prompt_cache_file

    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))
    bench = write_benchmark(tmp_path / "bench")
    tok = load_bench_tokenizer(bench)
    options = PromptOptions(num_sample_values=0, with_values=False, max_prompt_tokens=77)
    data = bench.resolve()
    stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in data.iterdir() if p.is_file())
    ident = {"data": str(data), "files": stats, "db_mtime": (data / "database").stat().st_mtime_ns,
             "split": "train", "keep_gold": True, "kind": "auto", "evidence": True, "limit": 5,
             "options": {"num_sample_values": 0, "with_values": False, "with_matched_values": True,
                         "max_matched_per_column": 3, "max_prompt_tokens": 77},
             "vocab": hashlib.sha256(json.dumps(sorted(tok.get_vocab().items())).encode()).hexdigest(),
             "tokenizer": type(tok).__name__}
    old = hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()[:20]
    got = prompt_cache_file(bench, "train", tok, options, limit=5, kind="auto", use_evidence=True, keep_gold=True)
    assert got == tmp_path / "cache" / "prompts" / f"{old}.json"

    db = next((bench / "database").rglob("*.sqlite"))
    st = db.stat()
    counter = db.read_bytes()[24:28].hex()
    raw = (f"{values.INDEX_VERSION}|{db.resolve()}|{st.st_size}|{st.st_mtime_ns}|{counter}|{values.MAX_VALUE_CHARS}|"
           f"{values.MAX_VALUES_PER_COLUMN}|{values.SAMPLE_CAP}|{values.SAMPLE_CHARS}|{values.MIN_VALUE_CHARS}")
    assert values.cache_path(db).name == f"{db.stem}-{hashlib.sha1(raw.encode('utf-8')).hexdigest()[:20]}.pkl"


def test_student_init_key_follows_the_previous_formula(tmp_path, monkeypatch):
    from kidsql.experiments import steps

    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "model.safetensors").write_bytes(b"x")
    stamp = (teacher / "model.safetensors").stat().st_mtime_ns
    old = hashlib.sha256(f"{teacher.resolve()}:{stamp}:1".encode()).hexdigest()[:16]
    monkeypatch.setattr("kidsql.models.keep_layers", lambda src, dst, n: (Path(dst) / "config.json").write_text("{}"))
    assert steps.resolve_student("teacher-layers:1", teacher) == str(tmp_path / "cache" / "student_inits" / old)
