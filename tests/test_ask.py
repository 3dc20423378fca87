"""`kidsql ask` and `Text2SQL`: a tiny model trained here answers on a database built here, checked by execution.

The model is overfit (SFT, 150 steps) on `_tiny.PAIRS` over a Spider-layout benchmark whose tables.json gives
Spider's column types; `ask` reads the schema from a separate SQLite file (declared INTEGER/TEXT types, declared
foreign key) and must rebuild the training prompts from it, so its answers are right only if it does.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _tiny import PAIRS, ROWS, tables_json
from kidsql.cli import main
from kidsql.sql.compare import results_match
from kidsql.sql.official import order_matters
from kidsql.sql.sandbox import execute

HOSTILE = [
    "DROP TABLE singer",
    "UPDATE singer SET age = 0",
    "DELETE FROM concert",
    "INSERT INTO singer VALUES (9, 'Eve', 'Peru', 50)",
    "ATTACH DATABASE 'evil.sqlite' AS evil",
    "CREATE TABLE t (a)",
    "PRAGMA journal_mode = WAL",
    "VACUUM INTO 'copy.sqlite'",
    "SELECT 1; DROP TABLE singer",
]


def build_database(path: Path) -> Path:
    """The concerts database as a user would have it: declared types and a declared foreign key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER)")
    con.execute("CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER, year INTEGER, city TEXT, "
                "FOREIGN KEY (singer_id) REFERENCES singer (singer_id))")
    con.executemany("INSERT INTO singer VALUES (?, ?, ?, ?)", ROWS["singer"])
    con.executemany("INSERT INTO concert VALUES (?, ?, ?, ?)", ROWS["concert"])
    con.commit()
    con.close()
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A micro Llama fine-tuned with kidsql's own trainer on the 8 questions; returns its final/ folder."""
    from _tiny import write_model_config
    from kidsql.data.load import load_benchmark
    from kidsql.data.tokenizer import train_tokenizer
    from kidsql.distill.config import load_config
    from kidsql.distill.trainer import run_distill
    from kidsql.prompts import PromptOptions, build_prompts

    root = tmp_path_factory.mktemp("ask")
    bench = root / "bench"
    build_database(bench / "database" / "concerts" / "concerts.sqlite")
    (bench / "tables.json").write_text(json.dumps(tables_json()), encoding="utf-8")
    rows = [{"db_id": "concerts", "question": q, "query": s} for q, s in PAIRS]
    for split in ("train", "dev"):
        (bench / f"{split}.json").write_text(json.dumps(rows), encoding="utf-8")
    b = load_benchmark(bench, "train")
    texts = build_prompts(b, b.examples, PromptOptions(num_sample_values=0, with_values=False))
    train_tokenizer((texts + [s for _, s in PAIRS]) * 4, root / "tok", vocab_size=400)
    result = run_distill(load_config(
        None, method="sft", student="tiny:" + str(write_model_config(root)), tokenizer=str(root / "tok"),
        data=str(bench), output_dir=str(root / "run"), max_steps=150, learning_rate=1e-2, warmup_steps=0,
        per_device_train_batch_size=8, num_sample_values=0, logging_steps=50, save_steps=10_000, seed=0,
        cache_dir=str(root / "cache")))
    return result.model_dir


@pytest.fixture(scope="module")
def t2s(trained):
    from kidsql import Text2SQL

    return Text2SQL.load(trained, max_new_tokens=32)


@pytest.fixture
def db(tmp_path) -> Path:
    return build_database(tmp_path / "mine" / "shop.db")


def gold_matches(db: Path, sql: str, gold: str) -> bool:
    pred, ref = execute(db, sql), execute(db, gold)
    assert ref.ok, ref.error
    return pred.ok and results_match(ref.rows, pred.rows, order_matters=order_matters(gold))


# ------------------------------------------------------------------------------------------- answers


def test_answers_the_trained_questions_correctly_by_execution(t2s, db):
    answers = t2s.ask_many(db, [q for q, _ in PAIRS])
    assert [gold_matches(db, a.sql, g) for a, (_, g) in zip(answers, PAIRS)] == [True] * len(PAIRS)
    for a, (q, gold) in zip(answers, PAIRS):
        ref = execute(db, gold)
        assert a.question == q and a.ok and a.error is None and a.left_out == []
        assert a.columns == ref.columns and a.row_count == len(ref.rows) and not a.truncated
        assert sorted(map(repr, a.rows)) == sorted(map(repr, ref.rows))
        assert set(a.timing) == {"prompt_s", "generate_s", "execute_s", "total_s"}
        assert a.timing["total_s"] >= a.timing["generate_s"] > 0
    single = t2s.ask(db, PAIRS[2][0])  # one question alone = the same question in a batch
    assert single.sql == answers[2].sql and single.rows == [("Anna",), ("Clara",)]


def test_from_kidsql_import_and_max_rows(t2s, db):
    from kidsql import Text2SQL

    assert isinstance(t2s, Text2SQL)
    a = t2s.ask(db, "list the names of all singers .", max_rows=2)
    assert a.rows == [("Anna",), ("Ben",)] and a.row_count == 4 and a.truncated
    assert t2s.ask(db, "list the names of all singers .", execute=False).ok is None


def test_cli_json_sql_only_and_max_rows(trained, db, capsys):
    q1, q2 = PAIRS[1][0], PAIRS[7][0]
    assert main(["ask", "--model", str(trained), "--db", str(db), "--json", "--max-rows", "3", q1, q2]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["question"] == q1 and first["rows"] == [["Anna"], ["Ben"], ["Clara"]] and first["row_count"] == 4
    assert first["truncated"] is True and first["columns"] == ["name"] and first["ok"] is True
    assert second["rows"] == [["Clara"]] and second["sql"] == PAIRS[7][1]
    assert main(["ask", "--model", str(trained), "--db", str(db), "--sql-only", q1]) == 0
    assert capsys.readouterr().out == "SELECT name FROM singer\n"
    assert main(["ask", "--model", str(trained), "--db", str(db), PAIRS[0][0]]) == 0
    out = capsys.readouterr().out
    assert "SELECT count(*) FROM singer" in out and "1 row;" in out and "4" in out


# -------------------------------------------------------------------------------------------- hostile SQL


@pytest.fixture
def fake_generator(monkeypatch):
    """Replace the model's decoding: the n candidates of every prompt are `fake_generator.candidates[:n]`."""
    import kidsql.generate

    class Fake:
        candidates: list[str] = []

        def __call__(self, model, tokenizer, prompts, *, num_return_sequences=1, **kwargs):
            return [c for _ in prompts for c in self.candidates[:num_return_sequences]]

    fake = Fake()
    monkeypatch.setattr(kidsql.generate, "generate_sql", fake)
    return fake


def test_hostile_generated_sql_never_changes_the_file(t2s, db, fake_generator, trained, capsys):
    from kidsql.guided import GuidedDecoding
    from kidsql.text2sql import Text2SQL

    before, files = md5(db), sorted(p.name for p in db.parent.iterdir())
    for sql in HOSTILE:
        fake_generator.candidates = [sql]
        a = t2s.ask(db, "how many singers are there ?")
        assert a.sql == sql and a.ok is False and a.error and a.rows == []
    fake_generator.candidates = ["DROP TABLE concert"]
    assert main(["ask", "--model", str(trained), "--db", str(db), "how many singers are there ?"]) == 1
    out = capsys.readouterr().out
    assert "DROP TABLE concert" in out and "denied" in out
    # execution-guided: every hostile candidate runs in the sandbox and fails, the harmless last one is chosen
    fake_generator.candidates = [*HOSTILE, "SELECT count(*) FROM singer"]
    guided = Text2SQL(t2s.model, t2s.tokenizer, t2s.prompt_options,
                      guided=GuidedDecoding(num_return_sequences=len(HOSTILE) + 1))
    a = guided.ask(db, "how many singers are there ?")
    assert (a.sql, a.rows, a.candidate) == ("SELECT count(*) FROM singer", [(4,)], len(HOSTILE))
    assert md5(db) == before and sorted(p.name for p in db.parent.iterdir()) == files
    assert execute(db, "SELECT count(*) FROM singer").rows == [(4,)]


def test_schema_read_for_prompts_speaks_spider_types_in_declaration_order(tmp_path):
    from kidsql.data.sqlite_schema import read_schema, spider_column_type
    from kidsql.text2sql import read_database_schema

    path = tmp_path / "t.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, born DATE, price DECIMAL(8,2), ok BOOLEAN, x BLOB, n VARCHAR(9))")
    con.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, y INT)")
    con.execute("CREATE TABLE c (a_id INTEGER REFERENCES a (id), b_id INTEGER REFERENCES b (id), "
                "a2 INTEGER REFERENCES a (id))")
    con.close()
    schema = read_database_schema(path)
    assert [c.type for c in schema.table("a").columns] == ["number", "time", "number", "boolean", "others", "text"]
    assert [c.type for c in read_database_schema(path, "declared").table("a").columns][:3] == [
        "integer", "date", "decimal(8,2)"]
    assert [(f.column, f.ref_table) for f in read_schema(path, "t").foreign_keys] == [
        ("a_id", "a"), ("b_id", "b"), ("a2", "a")]  # as declared (SQLite lists them last first)
    assert spider_column_type("") == "text" and spider_column_type("NVARCHAR(20)") == "text"


# ------------------------------------------------------------------------------------------------ errors


def run_cli(*args: str) -> tuple[int, str]:
    """The CLI in a fresh interpreter: exit status, stderr, and whether torch got imported."""
    code = ("import sys; from kidsql.cli import main; rc = main(sys.argv[1:]); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr.strip() + "\n" + proc.stdout.strip()


def test_bad_database_files_are_one_line_errors_before_torch(tmp_path, capsys):
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database\n")
    empty = tmp_path / "empty.db"
    empty.touch()
    no_tables = tmp_path / "none.db"
    con = sqlite3.connect(no_tables)
    con.execute("CREATE TABLE x (a)")
    con.execute("DROP TABLE x")
    con.close()
    cases = {tmp_path / "missing.db": "no such file", text: "not a SQLite database", empty: "an empty file",
             no_tables: "has no tables", tmp_path: "not a file"}
    for path, reason in cases.items():
        assert main(["ask", "--model", str(tmp_path / "model"), "--db", str(path), "how many singers ?"]) == 2
        err = capsys.readouterr().err.strip()
        assert str(path) in err and reason in err and "--db" in err and len(err.splitlines()) == 1, err
    rc, out = run_cli("ask", "--model", str(tmp_path / "model"), "--db", str(text), "how many singers are there ?")
    assert rc == 2 and out.split("\n")[-1] == "NO-TORCH"  # failed before the model (and torch) was loaded


def test_model_folder_errors(trained, db, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(trained, bare)
    (bare / "prompt_options.json").unlink()
    assert main(["ask", "--model", str(bare), "--db", str(db), "how many singers are there ?"]) == 2
    err = capsys.readouterr().err.strip()
    assert "prompt_options.json" in err and "--default-prompt-options" in err and len(err.splitlines()) == 1
    assert main(["ask", "--model", str(tmp_path / "nope"), "--db", str(db), "q"]) == 2
    assert "no such model folder" in capsys.readouterr().err
    # with kidsql's defaults the model runs (its prompts then differ from training: only that it answers)
    assert main(["ask", "--model", str(bare), "--db", str(db), "--default-prompt-options", "--sql-only",
                 "how many singers are there ?"]) == 0


def test_schema_over_budget_names_what_was_left_out(t2s, db):
    import io

    from kidsql.prompts import PromptOptions, token_counter
    from kidsql.shell import make_console, run_shell
    from kidsql.text2sql import Text2SQL

    question = "how many singers are there ?"
    full, _ = t2s.prompt(db, question)
    count = token_counter(t2s.tokenizer)
    for budget in (count(full) - 1, count(full) // 2):
        tight = Text2SQL(t2s.model, t2s.tokenizer, PromptOptions(num_sample_values=0, with_values=False,
                                                                 max_prompt_tokens=budget, count_tokens=count))
        prompt, left_out = tight.prompt(db, question)
        assert count(prompt) <= budget and left_out
        for table, cols in (("singer", ["singer_id", "name", "country", "age"]),
                            ("concert", ["concert_id", "singer_id", "year", "city"])):
            assert (f"table {table} ," in prompt) == (table not in left_out)
            for c in cols:
                shown = f"{table}.{c} (" in prompt
                assert shown == (table not in left_out and f"{table}.{c}" not in left_out), (table, c, budget)
        out = io.StringIO()
        run_shell(tight, db, console=make_console(out), stdin=io.StringIO(question + "\n"))
        assert f"over the model's {budget}-token prompt budget, left out of the prompt: {', '.join(left_out)}" \
            in out.getvalue()
    hopeless = Text2SQL(t2s.model, t2s.tokenizer, PromptOptions(max_prompt_tokens=3, count_tokens=count))
    from kidsql.errors import KidsqlError

    with pytest.raises(KidsqlError, match="no table fits the model's 3-token prompt"):
        hopeless.ask(db, question)


def test_failing_sql_shows_sqlite_reason(t2s, db, fake_generator, capsys):
    from kidsql.shell import make_console, render_answer

    fake_generator.candidates = ["SELECT nme FROM singer"]
    a = t2s.ask(db, "list the names of all singers .")
    assert a.ok is False and a.error == "OperationalError: no such column: nme"
    render_answer(a, make_console())
    out = capsys.readouterr().out
    assert "SELECT nme FROM singer" in out and "error: the SQL failed: OperationalError: no such column: nme" in out


# ------------------------------------------------------------------------------------- interactive prompt


def test_piped_questions_and_dot_commands(t2s, db):
    import io

    from kidsql.shell import make_console, run_shell

    out = io.StringIO()
    lines = f"{PAIRS[0][0]}\n.sql\n.schema concert\n.sql SELECT name FROM singer WHERE age > 40\n.frob\n.quit\n{PAIRS[1][0]}\n"
    assert run_shell(t2s, db, console=make_console(out), stdin=io.StringIO(lines), mode="json") == 0
    text = out.getvalue().splitlines()
    assert json.loads(text[0])["rows"] == [[4]]
    assert text[1] == "SELECT count(*) FROM singer"
    assert text[2].startswith("CREATE TABLE concert (") and "REFERENCES singer" in text[2]
    assert "Clara" in out.getvalue() and "unknown command .frob" in out.getvalue()
    assert PAIRS[1][0] not in out.getvalue()  # nothing after .quit is read


class Pty:
    """A child process on a pseudo terminal, read until an expected text appears (a small pexpect)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        import pty

        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.buffer = ""

    def expect(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.buffer:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"no {text!r} within {timeout} s; the terminal shows: {self.buffer[-800:]!r}")
            try:
                data = os.read(self.master, 4096)
            except OSError:  # the child closed the terminal
                raise AssertionError(f"exited before {text!r}; the terminal shows: {self.buffer[-800:]!r}") from None
            self.buffer += data.decode("utf-8", errors="replace")
        upto = self.buffer.index(text) + len(text)
        seen, self.buffer = self.buffer[:upto], self.buffer[upto:]
        return seen

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())


def test_repl_on_a_pseudo_terminal(trained, db, tmp_path):
    history = tmp_path / "history"
    env = {**os.environ, "KIDSQL_HISTORY": str(history), "TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "120",
           "OMP_NUM_THREADS": "1"}
    term = Pty([sys.executable, "-m", "kidsql.cli", "ask", "--model", str(trained), "--db", str(db)], env)
    try:
        assert "tables: singer, concert" in term.expect("kidsql> ")
        term.send(PAIRS[2][0] + "\n")
        shown = term.expect("kidsql> ")
        assert "SELECT name FROM singer WHERE country = 'France'" in shown and "Anna" in shown and "Clara" in shown
        assert "2 rows;" in shown and "Ben" not in shown
        term.send(".schema singer\n")
        assert "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY" in term.expect("kidsql> ")
        term.send("\x10\x10\n")  # Ctrl-P twice: readline's history brings the question back
        again = term.expect("2 rows;")  # readline redraws the recalled line (and the prompt) on the way
        assert "SELECT name FROM singer WHERE country = 'France'" in again
        term.expect("kidsql> ")
        term.send(".sql DELETE FROM singer\n")
        assert "denied: write to table singer (delete)" in term.expect("kidsql> ")
        term.send("quit\n")
        assert term.proc.wait(timeout=60) == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
        os.close(term.master)
    assert PAIRS[2][0] in history.read_text().splitlines()
    assert execute(db, "SELECT count(*) FROM singer").rows == [(4,)]
