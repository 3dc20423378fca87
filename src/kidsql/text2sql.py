"""Ask a trained model questions about your own SQLite database: the library behind `kidsql ask`.

    from kidsql import Text2SQL
    t = Text2SQL.load("runs/demo/students/kid/final")
    answer = t.ask("shop.sqlite", "how many customers are from Berlin ?")
    answer.sql, answer.columns, answer.rows, answer.timing

The steps are a benchmark prediction's, pointed at one file, so a model sees the prompts it was trained on: the
schema is read from the SQLite file (`kidsql.data.sqlite_schema`), sample and matched values come from its
cached value index (`kidsql.data.values`), the prompt is built with the options saved beside the model
(`prompt_options.json`, `kidsql.prompts`), SQL is decoded in batches (`kidsql.generate`; execution-guided with
several candidates, `kidsql.guided`) and run in the read-only sandbox (`kidsql.sql.sandbox`): whatever SQL the
model writes, the database file is never changed.

Problems a person can fix are `KidsqlError`s naming the file and the fix: a missing or non-SQLite file, a
database without tables, a model folder without `prompt_options.json`, a schema so far over the prompt budget
that no table fits. A schema partly over the budget is answered, and `Answer.left_out` names the tables (and
columns) the prompt lacked. SQL that fails is an answer too: `ok` is False and `error` is SQLite's reason.
torch and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kidsql.errors import KidsqlError

if TYPE_CHECKING:
    from kidsql.data.types import Schema
    from kidsql.guided import GuidedDecoding
    from kidsql.prompts import PromptOptions

SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass
class Answer:
    """One question's answer. `rows` holds at most the `max_rows` asked for; `row_count` counts every row.

    `ok` is None when the SQL was not run (`execute=False`), False when SQLite refused it (`error` says why).
    `timing` has `prompt_s`, `generate_s`, `execute_s` and `total_s`; in `ask_many` the batch's generation time
    is shared evenly among its questions. `candidate` is the chosen candidate's position (execution-guided
    decoding), `left_out` the tables ("t") and columns ("t.c") the prompt budget left out.
    """

    question: str
    sql: str
    ok: bool | None
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    row_count: int = 0
    error: str | None = None
    timing: dict[str, float] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    candidate: int = 0
    candidates: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.row_count > len(self.rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (`kidsql ask --json`): blobs become `x'hex'` strings, as SQLite writes them."""
        return {"question": self.question, "sql": self.sql, "ok": self.ok, "error": self.error,
                "columns": self.columns, "rows": [[_jsonable(v) for v in row] for row in self.rows],
                "row_count": self.row_count, "truncated": self.truncated, "timing": self.timing,
                "left_out": self.left_out, "candidate": self.candidate, "candidates": self.candidates}


def _jsonable(value: Any) -> Any:
    return f"x'{value.hex()}'" if isinstance(value, (bytes, bytearray, memoryview)) else value


# --------------------------------------------------------------------------------------------------- databases


def check_database(path: Path | str) -> Path:
    """`path` if it is a SQLite database file, else a one-line error saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise KidsqlError(f"{path}: no such file; pass --db an existing SQLite database file")
    if not path.is_file():
        raise KidsqlError(f"{path}: not a file; pass --db a SQLite database file, not a folder")
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as err:
        raise KidsqlError(f"{path}: cannot be read ({err.strerror}); check its permissions") from None
    if header != SQLITE_HEADER:
        what = "an empty file" if not header else "not a SQLite database (its first bytes are not 'SQLite format 3')"
        raise KidsqlError(f"{path}: {what}; pass --db a SQLite 3 database file (.sqlite, .db)")
    return path


def read_database_schema(path: Path | str, column_types: str = "spider") -> Schema:
    """The schema of a checked database file (named after the file); a database without tables is an error.

    `column_types` "spider" writes column types in Spider's vocabulary (number, text, time, ...), as the
    tables.json of Spider-layout benchmarks (the embedded one too) gave them to the model in training;
    "declared" keeps the types the CREATE statements declare (models trained on schemas read from SQLite).
    """
    import dataclasses

    from kidsql.data.sqlite_schema import read_schema, spider_column_type

    if column_types not in ("spider", "declared"):
        raise KidsqlError(f"--column-types {column_types!r}: use spider or declared")
    path = check_database(path)
    schema = read_schema(path, path.stem)
    if not schema.tables:
        raise KidsqlError(f"{path}: the database has no tables; pass --db a database that holds your data")
    if column_types == "spider":
        for table in schema.tables:
            table.columns = [dataclasses.replace(c, type=spider_column_type(c.type)) for c in table.columns]
    return schema


def left_out_names(schema: Schema, dropped: set[tuple[str, str]]) -> list[str]:
    """Tables wholly left out ("t"), then single columns left out of tables that stayed ("t.c"), in schema order."""
    tables, columns = [], []
    for table in schema.tables:
        gone = [c for c in table.columns if (c.table.lower(), c.name.lower()) in dropped]
        if gone and len(gone) == len(table.columns):
            tables.append(table.name)
        else:
            columns += [f"{table.name}.{c.name}" for c in gone]
    return tables + columns


# ------------------------------------------------------------------------------------------------------ model


def model_prompt_options(model_dir: Path, *, default_prompt_options: bool = False) -> dict[str, Any]:
    """The saved prompt options of a kidsql model folder; a folder without them is an error (the model's
    prompts would be guessed) unless `default_prompt_options` accepts kidsql's defaults."""
    from kidsql.prompts import PROMPT_OPTIONS_FILE, read_prompt_options

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise KidsqlError(f"{model_dir}: no such model folder; pass --model the folder `kidsql train` or "
                          "`kidsql distill` wrote (its final/ folder)")
    if not (model_dir / "config.json").is_file() and not (model_dir / "adapter_config.json").is_file():
        raise KidsqlError(f"{model_dir}: no config.json, so not a saved model; pass --model the final/ folder of a "
                          "training run")
    if not (model_dir / PROMPT_OPTIONS_FILE).is_file() and not default_prompt_options:
        raise KidsqlError(f"{model_dir}: no {PROMPT_OPTIONS_FILE}, so the prompts the model was trained on are "
                          f"unknown; write it (keys: num_sample_values, with_values, with_matched_values, "
                          "max_matched_per_column, max_prompt_tokens) or pass --default-prompt-options")
    return read_prompt_options(model_dir)


class Text2SQL:
    """A loaded model that answers questions on SQLite files; `load` it once, then `ask` or `ask_many`."""

    def __init__(self, model: Any, tokenizer: Any, prompt_options: PromptOptions, *, model_dir: Path | None = None,
                 max_new_tokens: int = 128, batch_size: int = 16, guided: GuidedDecoding | None = None,
                 column_types: str = "spider") -> None:
        from kidsql.guided import GuidedDecoding

        self.model, self.tokenizer, self.prompt_options = model, tokenizer, prompt_options
        self.model_dir = model_dir
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.guided = guided or GuidedDecoding()
        self.column_types = column_types
        self._schemas: dict[tuple[str, int, int], Schema] = {}

    @classmethod
    def load(cls, model_dir: Path | str, *, max_new_tokens: int = 128, batch_size: int = 16, dtype: str = "auto",
             guided: GuidedDecoding | None = None, default_prompt_options: bool = False,
             column_types: str = "spider") -> Text2SQL:
        """Load a model folder written by kidsql (weights, tokenizer, `prompt_options.json`); `column_types`:
        see `read_database_schema`."""
        from kidsql.predict import inference_prompt_options, load_for_inference

        model_dir = Path(model_dir)
        saved = model_prompt_options(model_dir, default_prompt_options=default_prompt_options)
        model, tokenizer = load_for_inference(model_dir, dtype)
        options = inference_prompt_options(saved, tokenizer, model, max_new_tokens)
        return cls(model, tokenizer, options, model_dir=model_dir, max_new_tokens=max_new_tokens,
                   batch_size=batch_size, guided=guided, column_types=column_types)

    def schema(self, db: Path | str) -> Schema:
        """The database's schema, read once per file version (path, size, mtime)."""
        path = check_database(db)
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._schemas:
            self._schemas[key] = read_database_schema(path, self.column_types)
        return self._schemas[key]

    def prompt(self, db: Path | str, question: str) -> tuple[str, list[str]]:
        """The model's prompt for `question` on `db`, and what the token budget left out of it."""
        from kidsql.data.types import Example
        from kidsql.prompts import fit_prompt

        schema = self.schema(db)
        if not question.strip():
            raise KidsqlError("the question is empty; ask something about the database")
        example = Example(db_id=schema.db_id, question=" ".join(question.split()), sql="")
        text, dropped = fit_prompt(example, schema, Path(db), self.prompt_options)
        left_out = left_out_names(schema, dropped)
        if len([n for n in left_out if "." not in n]) == len(schema.tables):
            raise KidsqlError(f"{db}: no table fits the model's {self.prompt_options.max_prompt_tokens}-token prompt "
                              f"with this question (left out: {', '.join(t.name for t in schema.tables)}); "
                              "ask a shorter question, or use a model trained with a larger max_prompt_tokens")
        return text, left_out

    def ask(self, db: Path | str, question: str, *, max_rows: int | None = None, execute: bool = True) -> Answer:
        """Answer one question on `db`: SQL, then (unless `execute` is False) its result from the sandbox."""
        return self.ask_many(db, [question], max_rows=max_rows, execute=execute)[0]

    def ask_many(self, db: Path | str, questions: Sequence[str], *, max_rows: int | None = None,
                 execute: bool = True) -> list[Answer]:
        """Answer several questions on `db`, their SQL decoded in batches of `batch_size` sequences."""
        from kidsql.guided import choose, generate_candidates

        if isinstance(questions, str):
            raise TypeError("ask_many takes a list of questions; use ask() for one")
        if max_rows is not None and max_rows < 0:
            raise KidsqlError(f"--max-rows {max_rows}: give 0 or more rows to show")
        db = check_database(db)
        t0 = time.perf_counter()
        prompts, left_outs = zip(*(self.prompt(db, q) for q in questions)) if questions else ((), ())
        prompt_s = (time.perf_counter() - t0) / max(len(questions), 1)
        t1 = time.perf_counter()
        groups = generate_candidates(self.model, self.tokenizer, prompts, self.guided,
                                     max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                                     show_progress=False)
        generate_s = (time.perf_counter() - t1) / max(len(questions), 1)
        answers = []
        for i, question in enumerate(questions):
            candidates = groups[i]
            t2 = time.perf_counter()
            answer = Answer(question=question, sql=candidates[0], ok=None, left_out=list(left_outs[i]),
                            candidates=candidates)
            if execute or self.guided.guides:
                choice = choose(candidates, db, require_rows=self.guided.require_rows, timeout_s=self.guided.timeout_s)
                rows = choice.result.rows or []
                answer.sql, answer.candidate, answer.ok = choice.sql, choice.index, choice.result.ok
                answer.error, answer.columns = choice.result.error, choice.result.columns
                answer.row_count, answer.rows = len(rows), rows[:max_rows] if max_rows is not None else rows
            execute_s = time.perf_counter() - t2
            answer.timing = {"prompt_s": prompt_s, "generate_s": generate_s, "execute_s": execute_s,
                             "total_s": prompt_s + generate_s + execute_s}
            answers.append(answer)
        return answers
