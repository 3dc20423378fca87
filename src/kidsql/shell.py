"""What `kidsql ask` shows: an answer as a table (rich), as JSON or as bare SQL, and the interactive prompt.

The interactive prompt follows the sqlite3 shell people know: a line is a question for the model, a line
starting with "." is a command (`.schema`, `.sql`, `.help`, `.quit`), `quit`/`exit`/Ctrl-D leave, Ctrl-C drops
the current line or answer. Line editing and history come from readline where Python has it; the history is
kept in `$KIDSQL_HISTORY` (default `~/.kidsql_history`; set it empty to keep none), as sqlite3 keeps
`$SQLITE_HISTORY`. Without a terminal on stdin (questions piped in) no prompt or banner is printed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from kidsql.errors import KidsqlError

if TYPE_CHECKING:
    from rich.console import Console

    from kidsql.text2sql import Answer, Text2SQL

PROMPT = "kidsql> "
QUIT_WORDS = frozenset({".quit", ".exit", "quit", "exit", r"\q"})
HELP = """\
.schema [TABLE]   the CREATE statements of the database (or of one table)
.sql              the SQL of the last answer
.sql QUERY        run your own query in the read-only sandbox
.help             this text
.quit             leave (also .exit, quit, exit, Ctrl-D)
anything else     a question for the model"""


def make_console(file: TextIO | None = None) -> Console:
    from rich.console import Console

    return Console(file=file, highlight=False, soft_wrap=True)


def render_answer(answer: Answer, console: Console, *, budget: int | None = None, mode: str = "table") -> None:
    """`mode` "table": the SQL, the result table, the row count and time; "json": one JSON line; "sql": the SQL."""
    if mode == "json":
        console.file.write(json.dumps(answer.to_dict(), ensure_ascii=False, default=str) + "\n")
        console.file.flush()
        return
    if answer.left_out:
        over = f" {budget}-token" if budget else ""
        console.print(f"note: over the model's{over} prompt budget, left out of the prompt: "
                      f"{', '.join(answer.left_out)}", style="yellow", markup=False)
    if mode == "sql":
        console.print(" ".join(answer.sql.split()), markup=False)
        return
    console.print(answer.sql, style="bold cyan", markup=False)
    if answer.candidate:
        console.print(f"(candidate {answer.candidate + 1} of {len(answer.candidates)}: the first to run)",
                      style="dim", markup=False)
    if answer.ok is False:
        console.print(f"error: the SQL failed: {answer.error}", style="red", markup=False)
    elif answer.ok:
        print_rows(console, answer.columns, answer.rows)
    shown = f", showing the first {len(answer.rows)}" if answer.truncated else ""
    rows = f"{answer.row_count} row{'s' if answer.row_count != 1 else ''}{shown}; " if answer.ok else ""
    t = answer.timing
    console.print(f"{rows}{t.get('total_s', 0):.2f} s (generate {t.get('generate_s', 0):.2f} s, "
                  f"execute {t.get('execute_s', 0):.3f} s)", style="dim", markup=False)


def print_rows(console: Console, columns: list[str], rows: list[tuple]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for c in columns:
        table.add_column(Text(c))
    for row in rows:
        table.add_row(*[Text("NULL" if v is None else _cell(v)) for v in row])
    console.print(table)


def _cell(value: Any) -> str:
    return f"x'{bytes(value).hex()}'" if isinstance(value, (bytes, bytearray, memoryview)) else str(value)


# --------------------------------------------------------------------------------------------- interactive


def history_path() -> Path | None:
    """`$KIDSQL_HISTORY`, `~/.kidsql_history` when unset, None (no history kept) when set empty."""
    env = os.environ.get("KIDSQL_HISTORY")
    if env is not None:
        return Path(env) if env.strip() else None
    return Path.home() / ".kidsql_history"


def _enable_history(path: Path | None) -> Callable[[], None]:
    """Load readline's history from `path`; returns the function that saves it back at exit."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return lambda: None
    if path is None:
        return lambda: None
    try:
        readline.read_history_file(str(path))
    except OSError:
        pass  # no history yet
    readline.set_history_length(1000)

    def save() -> None:
        try:
            readline.write_history_file(str(path))
        except OSError:
            pass  # an unwritable home loses history, not answers

    return save


def run_shell(t2s: Text2SQL, db: Path, *, max_rows: int | None = 20, mode: str = "table",
              console: Console | None = None, stdin: TextIO | None = None) -> int:
    """Answer questions on `db` line by line until quit or end of input; returns the exit status (0)."""
    console = console or make_console()
    stdin = stdin or sys.stdin
    interactive = stdin.isatty()
    save_history = _enable_history(history_path()) if interactive else (lambda: None)
    if interactive:
        tables = ", ".join(t.name for t in t2s.schema(db).tables)
        console.print(f"kidsql ask: {db} (tables: {tables})\nEnter a question, or .help", markup=False)
    last: Answer | None = None
    try:
        while True:
            try:
                line = input(PROMPT) if interactive else stdin.readline()
            except EOFError:
                break
            except KeyboardInterrupt:
                console.print("^C", markup=False)
                continue
            if not interactive and not line:
                break
            line = line.strip()
            if not line:
                continue
            if line.lower() in QUIT_WORDS:
                break
            try:
                if line.startswith("."):
                    _command(line, t2s, db, console, last, max_rows)
                    continue
                last = t2s.ask(db, line, max_rows=max_rows, execute=mode != "sql")
                render_answer(last, console, budget=t2s.prompt_options.max_prompt_tokens, mode=mode)
            except KeyboardInterrupt:
                console.print("interrupted", markup=False)
            except KidsqlError as err:  # a bad line must not end the session
                console.print(f"error: {err}", style="red", markup=False)
    finally:
        if interactive:
            console.print("", markup=False)
        save_history()
    return 0


def _command(line: str, t2s: Text2SQL, db: Path, console: Console, last: Answer | None,
             max_rows: int | None) -> None:
    name, _, rest = line.partition(" ")
    rest = rest.strip()
    if name == ".help":
        console.print(HELP, markup=False)
    elif name == ".schema":
        from kidsql.data.sqlite_schema import schema_sql

        statements = schema_sql(db, rest or None)
        console.print("\n".join(statements) if statements else f"no table named {rest!r}", markup=False)
    elif name == ".sql" and not rest:
        console.print(last.sql if last else "no question asked yet", markup=False)
    elif name == ".sql":
        from kidsql.sql.sandbox import execute

        result = execute(db, rest)
        if result.ok:
            rows = result.rows or []
            print_rows(console, result.columns, rows[:max_rows] if max_rows is not None else rows)
            shown = f", showing the first {max_rows}" if max_rows is not None and len(rows) > max_rows else ""
            console.print(f"{len(rows)} rows{shown}; {result.elapsed_s:.3f} s", style="dim", markup=False)
        else:
            console.print(f"error: {result.error}", style="red", markup=False)
    else:
        console.print(f"unknown command {name}; .help lists the commands", style="red", markup=False)
