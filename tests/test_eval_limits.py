"""The evaluator's bounds hold as enforced limits: time, memory, string sizes, orphans, and one-line errors.

Hostile queries are fixtures run with small limits, so every test is short; each asserts the bound itself (wall
time within the limit plus a margin, peak memory under a stated figure, no process left after SIGKILL).
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

from _tiny import write_tables
from kidsql.cli import main
from kidsql.data.types import Example
from kidsql.evaluate import MAX_SQL_CHARS, evaluate
from kidsql.sql.compare import CompareTimeout, spider_eq
from kidsql.sql.pool import run_bounded
from kidsql.sql.sandbox import Database, execute

# Shared machine: a bound is met when the elapsed time is under the limit plus this margin.
MARGIN_S = 2.0


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def db_dir(tmp_path: Path) -> Path:
    """`shop` with 3,000 rows in t: its self-join is 9 million rows, enough for a sort that outlives a bound."""
    write_tables(tmp_path / "db" / "shop" / "shop.sqlite",
                 {"t (x INTEGER, y INTEGER)": [(i % 50, (i * 7919) % 3000) for i in range(3000)]})
    return tmp_path / "db"


def shop(db_dir: Path) -> Path:
    return db_dir / "shop" / "shop.sqlite"


WINDOW = "SELECT count(*) FROM (SELECT rank() OVER (PARTITION BY a.x ORDER BY b.y) r FROM t a, t b)"
SORT = "SELECT a.x, b.y FROM t a, t b ORDER BY a.y * b.x + b.y LIMIT 1"
RECURSIVE = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c"


# ---------------------------------------------------------------- finding 1: time


@pytest.mark.parametrize("sql", [WINDOW, SORT, RECURSIVE], ids=["window", "sort", "recursive"])
def test_long_sorts_and_windows_stop_at_the_timeout(db_dir: Path, sql: str):
    t0 = time.monotonic()
    res = execute(shop(db_dir), sql, timeout_s=0.5)
    elapsed = time.monotonic() - t0
    assert not res.ok and res.error == "timeout after 0.5 s"
    assert elapsed < 0.5 + MARGIN_S, elapsed


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1"])
def test_timeout_must_be_finite_and_positive(db_dir: Path, tmp_path: Path, value: str, capsys):
    gold, pred = tmp_path / "gold.sql", tmp_path / "pred.sql"
    gold.write_text("SELECT 1\tshop\n")
    pred.write_text("SELECT 1\n")
    code = main(["evaluate", "--gold", str(gold), "--pred", str(pred), "--db-dir", str(db_dir), f"--timeout={value}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--timeout" in err[0] and "finite" in err[0]
    with pytest.raises(ValueError):
        Database(shop(db_dir), timeout_s=float(value))


def _sleep_forever(context: object, task: int) -> int:
    if task == 1:
        time.sleep(3600)  # a worker stuck where no SQLite interrupt reaches
    return task * 10


def test_a_worker_past_its_bound_is_replaced_and_the_rest_goes_on():
    t0 = time.monotonic()
    out = dict(run_bounded(_sleep_forever, None, [0, 1, 2, 3], workers=1, budget_s=lambda t: 1.0,
                           on_overrun=lambda t, b: f"overrun {t} after {b:g} s", on_crash=lambda t, r: r))
    assert out == {0: 0, 1: "overrun 1 after 1 s", 2: 20, 3: 30}
    assert time.monotonic() - t0 < 1.0 + MARGIN_S + 2.0  # the bound, the margin, and starting a fresh worker


def test_comparison_is_time_boxed():
    """Rows of rotations against rows of XOR (both Latin squares on 0..7): every row holds the same values and
    every column the same bag, so all 8! column permutations are candidates, yet none makes the bags equal.
    Unbounded, the search takes many seconds on 20,000 rows; the deadline stops it."""
    n = 20_000
    gold = [tuple((i % 8 + k) % 8 for k in range(8)) for i in range(n)]
    pred = [tuple((i % 8) ^ k for k in range(8)) for i in range(n)]
    assert not spider_eq(gold[:8], pred[:8], order_matters=False)  # the small case: no permutation exists
    t0 = time.monotonic()
    with pytest.raises(CompareTimeout):
        spider_eq(gold, pred, order_matters=False, deadline=time.monotonic() + 0.3)
    assert time.monotonic() - t0 < 0.3 + MARGIN_S


# ---------------------------------------------------------------- finding 2: memory and sizes

# Peak resident memory from VmHWM: ru_maxrss would carry the (large) pytest parent's figure over fork.
PEAK_SCRIPT = """
import sys
from kidsql.sql.sandbox import execute
res = execute(sys.argv[1], sys.argv[2], max_bytes=16 * 1024 * 1024, timeout_s=20)
print(res.error)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(int(hwm.split()[1]) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmHWM from /proc")
@pytest.mark.parametrize("sql", [
    "SELECT zeroblob(8000000) FROM t LIMIT 600",
    "SELECT zeroblob(8000000), zeroblob(8000000), zeroblob(8000000) FROM t LIMIT 600",
], ids=["one-column", "three-columns"])
def test_byte_cap_is_checked_as_rows_arrive(db_dir: Path, sql: str):
    """16 MB byte cap: the process peaks under 150 MB (was 3-8 GB when the cap was checked every 512 rows)."""
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(shop(db_dir)), sql], capture_output=True,
                         text=True, timeout=120)
    error, peak_mb = out.stdout.split("\n")[:2]
    assert error == f"byte cap {16 * 1024 * 1024} exceeded"
    assert int(peak_mb) < 150, peak_mb


def test_long_sql_is_never_parsed_and_never_stored_whole(db_dir: Path, tmp_path: Path):
    huge = "SELECT " + " + ".join(["1"] * (MAX_SQL_CHARS // 2)) + " FROM t"
    assert len(huge) > MAX_SQL_CHARS
    t0 = time.monotonic()
    report = evaluate([Example(db_id="shop", question="", sql="SELECT count(*) FROM t")], [huge], db_dir,
                      metrics=("ex", "em"), workers=1, show_progress=False)
    assert time.monotonic() - t0 < 10
    v = report.verdicts[0]
    assert v.verdict == "pred_error" and "longer than" in v.reason and v.ex is False and v.em is False
    report.write(tmp_path / "out")
    stored = json.loads((tmp_path / "out" / "results.json").read_text())["examples"][0]["pred"]
    assert len(stored) < 10_100 and stored.endswith("characters, cut]")


# ---------------------------------------------------------------- finding 3: orphans


def _children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_sigkill_of_evaluate_leaves_no_worker(db_dir: Path, tmp_path: Path):
    gold, pred = tmp_path / "gold.sql", tmp_path / "pred.sql"
    gold.write_text("SELECT 1\tshop\n" * 4)
    pred.write_text((RECURSIVE + "\n") * 4)
    proc = subprocess.Popen([sys.executable, "-m", "kidsql.cli", "evaluate", "--gold", str(gold), "--pred",
                             str(pred), "--db-dir", str(db_dir), "--metrics", "ex", "--workers", "2",
                             "--timeout", "60", "--quiet", "--no-cache"])
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:
            workers = _children(proc.pid)
            time.sleep(0.1)
        assert len(workers) == 2, "the evaluation did not start its two workers"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        t0 = time.monotonic()
        while any(_alive(w) for w in workers) and time.monotonic() - t0 < 5:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "workers outlived a SIGKILLed evaluate"
    finally:
        if proc.poll() is None:
            proc.kill()


# ---------------------------------------------------------------- findings 6 and 7: one-line errors, before work


def _cli(tmp_path: Path, db_dir: Path, *extra: str, gold: str = "SELECT 1\tshop\n") -> tuple[int, list[str]]:
    g, p = tmp_path / "gold.sql", tmp_path / "pred.sql"
    g.write_text(gold)
    p.write_text("SELECT 1\n" * gold.count("\n"))
    proc = subprocess.run([sys.executable, "-m", "kidsql.cli", "evaluate", "--gold", str(g), "--pred", str(p),
                           "--db-dir", str(db_dir), "--quiet", *extra], capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stderr.strip().splitlines()


def test_bad_inputs_are_one_line_errors_before_any_work(db_dir: Path, tmp_path: Path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        (["--out", str(a_file)], "is an existing file"),
        (["--out", str(a_file / "sub")], "is not writable"),
        (["--tables", str(tmp_path)], "is a folder"),
        (["--limit", "0"], "--limit 0"),
        (["--workers", "0"], "--workers 0"),
    ]
    for extra, fragment in cases:
        code, err = _cli(tmp_path, db_dir, *extra)
        assert code == 2 and len(err) == 1 and fragment in err[0] and "Traceback" not in err[0], (extra, err)
    code, err = _cli(tmp_path, db_dir, gold="")
    assert code == 2 and len(err) == 1 and "holds no gold query" in err[0]
    # A report already there is kept unless --force.
    out = tmp_path / "out"
    assert _cli(tmp_path, db_dir, "--out", str(out))[0] == 0
    before = (out / "results.json").read_text()
    code, err = _cli(tmp_path, db_dir, "--out", str(out))
    assert code == 2 and "--force" in err[0] and (out / "results.json").read_text() == before
    assert _cli(tmp_path, db_dir, "--out", str(out), "--force")[0] == 0


# ---------------------------------------------------------------- finding 8: true reasons


def test_denials_give_the_true_reason(db_dir: Path, tmp_path: Path):
    res = execute(shop(db_dir), "SELECT name FROM pragma_table_info('t')")
    assert not res.ok and "pragma function pragma_table_info" in res.error and "PRAGMA table_info" in res.error
    assert [r[1] for r in execute(shop(db_dir), "PRAGMA table_info(t)").rows] == ["x", "y"]
    assert execute(shop(db_dir), "VACUUM").error == "denied: VACUUM (it rewrites the database file)"
    res = execute(shop(db_dir), f"VACUUM INTO '{tmp_path / 'copy.sqlite'}'")
    assert res.error.startswith("denied: VACUUM INTO") and not (tmp_path / "copy.sqlite").exists()


# ---------------------------------------------------------------- a reused connection carries nothing over


def test_a_reused_connection_carries_nothing_between_queries(db_dir: Path):
    hostile = [
        "CREATE TEMP TABLE x (a)", "PRAGMA query_only=0", "ATTACH ':memory:' AS m", "BEGIN", "SAVEPOINT s",
        "PRAGMA temp_store=FILE", WINDOW, "SELECT load_extension('x')", "SELECT printf('%.*c', 100000000, 'x')",
    ]
    probe = ["SELECT count(*) FROM temp.sqlite_master", "SELECT count(*), sum(x), max(y) FROM t",
             "SELECT name FROM pragma_database_list"]
    db = Database(shop(db_dir), timeout_s=0.5)
    try:
        for sql in hostile:
            assert not db.run(sql).ok, sql
            after = [db.run(q) for q in probe[:2]]
            assert [r.rows for r in after] == [execute(shop(db_dir), q).rows for q in probe[:2]], sql
            assert after[0].rows == [(0,)]
    finally:
        db.close()


# ---------------------------------------------------------------- start-up: no torch, no transformers

NO_TORCH_SCRIPT = """
import sys
from kidsql.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "transformers", "peft", "accelerate") if m in sys.modules)
print(code, ",".join(heavy) or "none")
"""


def test_evaluate_and_data_never_import_torch(db_dir: Path, tmp_path: Path):
    gold, pred = tmp_path / "gold.sql", tmp_path / "pred.sql"
    gold.write_text("SELECT count(*) FROM t\tshop\n")
    pred.write_text("SELECT count(*) FROM t\n")
    runs = [["evaluate", "--gold", str(gold), "--pred", str(pred), "--db-dir", str(db_dir), "--quiet",
             "--metrics", "ex,em"], ["data", "show", str(tmp_path / "missing")]]
    for argv in runs:
        out = subprocess.run([sys.executable, "-c", NO_TORCH_SCRIPT, *argv], capture_output=True, text=True,
                             timeout=120)
        assert out.stdout.strip().splitlines()[-1].endswith(" none"), (argv, out.stdout, out.stderr)
