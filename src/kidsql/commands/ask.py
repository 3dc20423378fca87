"""`kidsql ask`: a trained model answers questions about your own SQLite database.

`kidsql ask --model DIR --db FILE "question"` prints the SQL, its result as a table, the row count and the time;
several questions are answered in one batch; without a question an interactive prompt opens (`kidsql.shell`).
Everything is `kidsql.text2sql.Text2SQL`; this module parses options. The database and the model folder are
checked before the model is loaded, so a wrong path fails at once, without importing torch.
Exit status: 0 when every SQL ran, 1 when one failed in SQLite, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kidsql.errors import KidsqlError
from kidsql.guided import add_guided_arguments, guided_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("questions", nargs="*", metavar="QUESTION",
                        help="question(s) about the database; none: an interactive prompt")
    parser.add_argument("--model", required=True, type=Path, help="model folder written by kidsql train/distill")
    parser.add_argument("--db", required=True, type=Path, help="the SQLite database file to ask")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per answer, one per line")
    out.add_argument("--sql-only", action="store_true", help="print the SQL only (it is not run unless "
                                                              "--num-return-sequences > 1 needs it)")
    parser.add_argument("--max-rows", type=int, default=20, help="rows shown (or put in JSON) per answer (default 20)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16, help="sequences decoded per batch")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, else float32), float32, bfloat16, float16")
    parser.add_argument("--column-types", choices=["spider", "declared"], default="spider",
                        help="column types in the prompt: Spider's vocabulary (number/text/time, as benchmark "
                             "tables.json files give them; default) or as the CREATE statements declare them")
    parser.add_argument("--default-prompt-options", action="store_true",
                        help="accept kidsql's default prompt for a model folder without prompt_options.json")
    add_guided_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.max_rows < 0 or args.max_new_tokens < 1 or args.batch_size < 1:
        raise KidsqlError("--max-rows must be >= 0, --max-new-tokens and --batch-size >= 1; fix the option")
    guided = guided_from_args(args)
    questions = [q for q in args.questions if q.strip()]
    if args.questions and not questions:
        raise KidsqlError("the question is empty; ask something about the database")

    from kidsql.text2sql import Text2SQL, model_prompt_options, read_database_schema

    read_database_schema(args.db, args.column_types)  # fails fast, before the model is loaded
    model_prompt_options(args.model, default_prompt_options=args.default_prompt_options)

    from kidsql.shell import make_console, render_answer, run_shell

    mode = "json" if args.json else "sql" if args.sql_only else "table"
    t2s = Text2SQL.load(args.model, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                        dtype=args.dtype, guided=guided, default_prompt_options=args.default_prompt_options,
                        column_types=args.column_types)
    console = make_console()
    if not questions:
        return run_shell(t2s, args.db, max_rows=args.max_rows, mode=mode, console=console, stdin=sys.stdin)
    answers = t2s.ask_many(args.db, questions, max_rows=args.max_rows, execute=mode != "sql")
    for answer in answers:
        render_answer(answer, console, budget=t2s.prompt_options.max_prompt_tokens, mode=mode)
    return 1 if any(a.ok is False for a in answers) else 0
