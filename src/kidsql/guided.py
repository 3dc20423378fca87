"""Execution-guided decoding: N candidate queries per question; the first that runs in the sandbox is the answer.

Why: a small model's best guess often fails on SQLite (a column of the wrong table, a bad join) while a
lower-ranked candidate runs, and running a candidate in the read-only sandbox costs milliseconds, far less than
a larger model (Wang et al., 2018, "Robust Text-to-SQL Generation with Execution-Guided Decoding").

Candidates come from beam search (`num_beams = num_return_sequences`, best beam first) or from sampling
(`do_sample`, in the order drawn). They are executed in order by `kidsql.sql.sandbox.execute`; the first that runs
without error (and, with `require_rows`, returns at least one row) is chosen. When none qualifies, the first
candidate is kept, so the answer is the one plain decoding of that kind would give. With one candidate and no
sampling this is greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kidsql.errors import KidsqlError
from kidsql.sql.sandbox import DEFAULT_TIMEOUT_S, ExecResult, execute


@dataclass(frozen=True)
class GuidedDecoding:
    """How many candidates, from where, and what counts as a usable one (transformers' generation names)."""

    num_return_sequences: int = 1
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    require_rows: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.num_return_sequences < 1:
            raise KidsqlError(f"--num-return-sequences {self.num_return_sequences}: give 1 or more candidates "
                              "(num_return_sequences in a bench config)")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise KidsqlError(f"--temperature {self.temperature} / --top-p {self.top_p}: need temperature > 0 and "
                              "0 < top_p <= 1")

    @property
    def guides(self) -> bool:
        """True when execution can change the answer: there is more than one candidate to choose from."""
        return self.num_return_sequences > 1

    def generation_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `kidsql.generate.generate_sql` that produce the candidates."""
        n = self.num_return_sequences
        return {"num_return_sequences": n, "num_beams": 1 if self.do_sample else n, "do_sample": self.do_sample,
                "temperature": self.temperature, "top_p": self.top_p}

    def describe(self) -> str:
        """A short label for reports: "greedy", "beam 4", "sample 8 (t=1)", plus "+rows" with require_rows."""
        n = self.num_return_sequences
        if self.do_sample:
            text = f"sample {n} (t={self.temperature:g})"
        else:
            text = "greedy" if n == 1 else f"beam {n}"
        return text + (" +rows" if self.require_rows else "")


@dataclass
class Choice:
    """The chosen candidate: its SQL, its position among the candidates, and its sandbox result (the first
    candidate's when none qualified); `tried` is how many distinct candidates were executed."""

    sql: str
    index: int
    result: ExecResult
    tried: int
    candidates: list[str]


def usable(result: ExecResult, require_rows: bool) -> bool:
    return result.ok and (not require_rows or bool(result.rows))


def choose(candidates: Sequence[str], db_path: Path, *, require_rows: bool = False,
           timeout_s: float = DEFAULT_TIMEOUT_S) -> Choice:
    """The first candidate that executes (with rows, if required) on `db_path`, else the first candidate.

    Identical candidates (beams that decode to the same text) run once.
    """
    if not candidates:
        raise ValueError("choose() needs at least one candidate")
    seen: dict[str, ExecResult] = {}
    first: ExecResult | None = None
    for i, sql in enumerate(candidates):
        if sql not in seen:
            seen[sql] = execute(db_path, sql, timeout_s=timeout_s)
        result = seen[sql]
        if first is None:
            first = result
        if usable(result, require_rows):
            return Choice(sql, i, result, len(seen), list(candidates))
    assert first is not None
    return Choice(candidates[0], 0, first, len(seen), list(candidates))


def generate_candidates(model: Any, tokenizer: Any, prompts: Sequence[str], options: GuidedDecoding, *,
                        max_new_tokens: int = 128, batch_size: int = 16, show_progress: bool = True) -> list[list[str]]:
    """`options.num_return_sequences` candidates per prompt, by `kidsql.generate.generate_sql`.

    A batch holds `batch_size // n` prompts, so that it decodes about `batch_size` sequences, as greedy does.
    """
    from kidsql.generate import generate_sql

    n = options.num_return_sequences
    flat = generate_sql(model, tokenizer, list(prompts), max_new_tokens=max_new_tokens,
                        batch_size=max(1, batch_size // n), show_progress=show_progress, **options.generation_kwargs())
    return [flat[i * n:(i + 1) * n] for i in range(len(prompts))]


def generate_guided(model: Any, tokenizer: Any, prompts: Sequence[str], db_paths: Sequence[Path],
                    options: GuidedDecoding, *, max_new_tokens: int = 128, batch_size: int = 16,
                    show_progress: bool = True) -> list[Choice]:
    """One `Choice` per prompt: its candidates (`generate_candidates`), then `choose` on prompt i's database."""
    if len(prompts) != len(db_paths):
        raise ValueError(f"{len(prompts)} prompts but {len(db_paths)} databases")
    groups = generate_candidates(model, tokenizer, prompts, options, max_new_tokens=max_new_tokens,
                                 batch_size=batch_size, show_progress=show_progress)
    return [choose(group, Path(db), require_rows=options.require_rows, timeout_s=options.timeout_s)
            for group, db in zip(groups, db_paths)]


def add_guided_arguments(parser: Any) -> None:
    """The options of execution-guided decoding, shared by `kidsql predict` and `kidsql ask`."""
    group = parser.add_argument_group("execution-guided decoding")
    group.add_argument("--num-return-sequences", type=int, default=1, metavar="N",
                       help="candidates per question; the first that executes in the sandbox wins (default 1: greedy)")
    group.add_argument("--do-sample", action="store_true", help="sample the candidates instead of beam search")
    group.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (with --do-sample)")
    group.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (with --do-sample)")
    group.add_argument("--require-rows", action="store_true",
                       help="a candidate must also return at least one row to be chosen")


def guided_from_args(args: Any) -> GuidedDecoding:
    return GuidedDecoding(num_return_sequences=args.num_return_sequences, do_sample=args.do_sample,
                          temperature=args.temperature, top_p=args.top_p, require_rows=args.require_rows)
