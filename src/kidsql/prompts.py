"""CodeS-style prompts: the schema (with sample values), foreign keys, matched values, then the question.

The exact text (one line per item; sections with nothing in them are left out):

    table T , columns = [ T.c ( type | primary key | comment : ... | values : v1 , v2 ) , ... ]
    foreign keys :
    a.x = b.y
    matched values :
    T.c ( v1 , v2 )
    evidence : <BIRD hint, only when present>
    question : <question>
    SQL:

Identifiers that are not a single word are back-quoted (`Free Meal Count (K-12)`), as SQLite accepts them.
The prompt always ends with `SQL_START`; the model writes the SQL right after it. Training targets should be
`target_text(sql)` (a space then the SQL), so that generation and training agree on the first token.

Sample values are the first distinct non-null, non-empty values of a column in table order (deterministic,
truncated to 32 characters). Matched values are database text values that occur as whole words in the question
or evidence (see `kidsql.data.values`). Both need `db_path`; without it (or when the file is missing) the
prompt has no values.

Token budget (`max_prompt_tokens`): when the prompt is too long, schema items are dropped in this fixed order
until it fits (found by bisection over the order, so a real tokenizer is called only ~log2(#columns) times):
  1. irrelevant non-key columns (relevance 0), least relevant table first, last column first;
  2. whole irrelevant tables (relevance 0), last table first;
  3. relevant non-key columns, lowest relevance first;
  4. key columns (primary or foreign key), lowest relevance first;
  5. whole remaining tables, least relevant first.
Steps 1, 3 and 4 never remove a table's last column: a table leaves the prompt only as a whole (steps 2, 5).
Relevance of a column: 2 per name word found in the question (a question word starting with a name word of 4+
letters counts, for German compounds) + 3 when it has matched values; of a table: 2 per table-name word found +
its best column. Foreign-key and matched-value lines of dropped columns go with them. If even the question alone
is over budget the shortest prompt is returned (the budget is best effort only then).

At training time the gold SQL is known, and `keep_gold=True` never drops what it uses (`gold_items`): every
column whose name the SQL mentions in a table it mentions, and at least one column of each such table. A
model trained on prompts that lack the gold's columns would learn to invent names. `PromptStats` counts the
prompts that were shortened and those still over budget, so a run reports them instead of cutting silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kidsql.data.types import Benchmark, Column, Example, Schema

SQL_START = "\nSQL:"


def whitespace_tokens(text: str) -> int:
    """Default token counter: whitespace words, a tokenizer-free stand-in that is monotone in prompt length."""
    return len(text.split())


class token_counter:  # noqa: N801 - used like the function it replaces: token_counter(tokenizer)(text)
    """The budget's counter for a real model: the number of ids its tokenizer gives the prompt; `many` counts a
    list in one tokenizer call (`count_many`)."""

    def __init__(self, tokenizer: object) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])  # type: ignore[operator]

    def many(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(texts)["input_ids"]]  # type: ignore[operator]


@dataclass
class PromptStats:
    """How many prompts of a split were shortened to the budget, and how many stayed over it (best effort)."""

    total: int = 0
    shortened: int = 0
    over_budget: int = 0

    def line(self, budget: int | None) -> str:
        return (f"prompts: {self.shortened} of {self.total} shortened to fit {budget} tokens"
                + (f", {self.over_budget} still over it (cut from the start)" if self.over_budget else ""))


@dataclass(frozen=True)
class PromptOptions:
    num_sample_values: int = 2
    with_values: bool = True
    with_matched_values: bool = True
    max_matched_per_column: int = 3
    max_prompt_tokens: int | None = None
    count_tokens: Callable[[str], int] = whitespace_tokens


def target_text(sql: str) -> str:
    """What follows `SQL_START` in a training sequence: one space, then the SQL."""
    return " " + sql.strip()


Key = tuple[str, str]  # (table lower, column lower)


def _key(table: str, column: str) -> Key:
    return (table.lower(), column.lower())


def _ident(name: str) -> str:
    """Names that are not one word (BIRD has `Free Meal Count (K-12)`) are back-quoted, as SQLite accepts them."""
    return name if re.fullmatch(r"\w+", name) else "`" + name.replace("`", "``") + "`"


def _render_column(col: Column, samples: list[str]) -> str:
    parts = [col.type] if col.type else []
    if col.primary_key:
        parts.append("primary key")
    if col.comment:
        parts.append(f"comment : {col.comment}")
    if samples:
        parts.append("values : " + " , ".join(samples))
    name = f"{_ident(col.table)}.{_ident(col.name)}"
    return f"{name} ( {' | '.join(parts)} )" if parts else name


def _render(
    schema: Schema,
    dropped: set[Key],
    samples: dict[Key, list[str]],
    matched: dict[Key, list[str]],
    example: Example,
) -> str:
    lines = []
    for table in schema.tables:
        cols = [c for c in table.columns if _key(c.table, c.name) not in dropped]
        if cols:
            body = " , ".join(_render_column(c, samples.get(_key(c.table, c.name), [])) for c in cols)
            lines.append(f"table {_ident(table.name)} , columns = [ {body} ]")
    fks = [
        f"{_ident(fk.table)}.{_ident(fk.column)} = {_ident(fk.ref_table)}.{_ident(fk.ref_column)}"
        for fk in schema.foreign_keys
        if _key(fk.table, fk.column) not in dropped and _key(fk.ref_table, fk.ref_column) not in dropped
    ]
    if fks:
        lines += ["foreign keys :", *fks]
    mv = [
        f"{_ident(c.table)}.{_ident(c.name)} ( {' , '.join(matched[_key(c.table, c.name)])} )"
        for c in schema.columns()
        if _key(c.table, c.name) in matched and _key(c.table, c.name) not in dropped
    ]
    if mv:
        lines += ["matched values :", *mv]
    if example.evidence:
        lines.append(f"evidence : {example.evidence}")
    lines.append(f"question : {example.question}")
    return "\n".join(lines) + SQL_START


def _name_hits(name: str, q_words: set[str]) -> int:
    tokens = [t for t in re.split(r"[_\W]+", name.casefold()) if t]
    return sum(1 for t in tokens if t in q_words or (len(t) >= 4 and any(w.startswith(t) for w in q_words)))


def _drop_steps(schema: Schema, matched: dict[Key, list[str]], text: str) -> list[set[Key]]:
    """The documented drop order as a list of steps, each a set of columns removed together."""
    from kidsql.data.values import words

    q_words = set(words(text))
    keys = {_key(fk.table, fk.column) for fk in schema.foreign_keys}
    keys |= {_key(fk.ref_table, fk.ref_column) for fk in schema.foreign_keys}
    col_score: dict[Key, int] = {}
    for c in schema.columns():
        k = _key(c.table, c.name)
        col_score[k] = 2 * _name_hits(f"{c.name} {c.natural}", q_words) + (3 if matched.get(k) else 0)
    n_tables = len(schema.tables)
    table_score = {
        t.name.lower(): 2 * _name_hits(f"{t.name} {t.natural}", q_words)
        + max((col_score[_key(t.name, c.name)] for c in t.columns), default=0)
        for t in schema.tables
    }
    # least relevant table first; among equals, the later table first
    ranked = sorted(range(n_tables), key=lambda i: (table_score[schema.tables[i].name.lower()], -i))
    rank_of = {schema.tables[i].name.lower(): r for r, i in enumerate(ranked)}
    remaining = {t.name.lower(): [_key(t.name, c.name) for c in t.columns] for t in schema.tables}
    steps: list[set[Key]] = []

    primary = {_key(c.table, c.name) for c in schema.columns() if c.primary_key}
    pos = {k: i for t in schema.tables for i, k in enumerate(_key(t.name, c.name) for c in t.columns)}

    def is_key(k: Key) -> bool:
        return k in keys or k in primary

    def drop_columns(candidates: list[Key]) -> None:
        for k in candidates:
            left = remaining[k[0]]
            if k in left and len(left) > 1:
                left.remove(k)
                steps.append({k})

    def order(cols: list[Key]) -> list[Key]:
        return sorted(cols, key=lambda k: (col_score[k], rank_of[k[0]], -pos[k]))

    every = [k for t in (schema.tables[i] for i in ranked) for k in remaining[t.name.lower()]]
    drop_columns(order([k for k in every if col_score[k] == 0 and not is_key(k)]))
    for i in ranked:
        name = schema.tables[i].name.lower()
        if table_score[name] == 0 and remaining[name]:
            steps.append(set(remaining[name]))
            remaining[name] = []
    live = [k for i in ranked for k in remaining[schema.tables[i].name.lower()]]
    drop_columns(order([k for k in live if not is_key(k)]))
    drop_columns(order([k for k in live if is_key(k)]))
    for i in ranked:
        name = schema.tables[i].name.lower()
        if remaining[name]:
            steps.append(set(remaining[name]))
            remaining[name] = []
    return steps


def _values_for(
    schema: Schema, db_path: Path | None, example: Example, options: PromptOptions,
    indexes: dict[Path, object] | None = None,
) -> tuple[dict[Key, list[str]], dict[Key, list[str]]]:
    """(samples, matched) keyed by lower-cased (table, column), restricted to the schema's columns (`indexes`:
    value indexes already loaded in this call, by database path; loading one checks the file each time)."""
    if db_path is None or not Path(db_path).is_file():
        return {}, {}
    if not (options.with_values and options.num_sample_values > 0) and not options.with_matched_values:
        return {}, {}
    from kidsql.data.values import load_value_index

    index = indexes.get(db_path) if indexes is not None else None
    if index is None:
        index = load_value_index(Path(db_path))
        if indexes is not None:
            indexes[db_path] = index
    wanted = {_key(c.table, c.name) for c in schema.columns()}
    samples: dict[Key, list[str]] = {}
    if options.with_values and options.num_sample_values > 0:
        for (t, c), vals in index.samples.items():
            if _key(t, c) in wanted and vals:
                samples[_key(t, c)] = vals[: options.num_sample_values]
    matched: dict[Key, list[str]] = {}
    if options.with_matched_values:
        text = f"{example.question} {example.evidence}"
        for (t, c), vals in index.match(text, max_per_column=options.max_matched_per_column).items():
            if _key(t, c) in wanted:
                matched[_key(t, c)] = vals
    return samples, matched


def gold_items(sql: str, schema: Schema) -> set[Key]:
    """The schema columns a SQL query uses, read from its identifiers: each column whose name occurs in the
    query, in a table whose name occurs in it, plus the first column of a mentioned table none of whose columns
    occurs (`SELECT count(*) FROM t` still needs `t`). Over-approximate on purpose: keeping a column too many
    costs a few tokens, dropping a used one teaches the model to invent names."""
    idents = {m.casefold() for m in re.findall(r"[^\W\d]\w*", sql)}
    idents |= {m.casefold() for q in re.findall(r'`([^`]+)`|"([^"]+)"|\[([^\]]+)\]', sql) for m in q if m}
    keep: set[Key] = set()
    for table in schema.tables:
        if table.name.casefold() not in idents or not table.columns:
            continue
        used = {_key(c.table, c.name) for c in table.columns if c.name.casefold() in idents}
        keep |= used or {_key(table.columns[0].table, table.columns[0].name)}
    return keep


def build_prompt(example: Example, schema: Schema, db_path: Path | None, options: PromptOptions | None = None,
                 *, keep_gold: bool = False, stats: PromptStats | None = None) -> str:
    """The CodeS-style prompt for one example, ending with `SQL_START` (see the module docstring); with
    `keep_gold`, nothing the gold SQL uses is dropped; `stats` counts a shortened or over-budget prompt."""
    return fit_prompt(example, schema, db_path, options, keep_gold=keep_gold, stats=stats)[0]


def fit_prompt(example: Example, schema: Schema, db_path: Path | None, options: PromptOptions | None = None,
               *, keep_gold: bool = False, stats: PromptStats | None = None) -> tuple[str, set[Key]]:
    """`build_prompt`'s prompt and the (table, column) keys, lower-cased, that the token budget left out of it."""
    return fit_prompts([(example, schema, db_path)], options, keep_gold=keep_gold, stats=stats)[0]


def fit_prompts(items: list[tuple[Example, Schema, Path | None]], options: PromptOptions | None = None, *,
                keep_gold: bool = False, stats: PromptStats | None = None,
                progress: bool = False) -> list[tuple[str, set[Key]]]:
    """`fit_prompt` for many examples at once: every example's bisection advances one step per round, and a
    round's candidate prompts are counted in one tokenizer call (`count_many`), which a fast tokenizer runs in
    parallel at a fraction of the cost of one call per prompt. Same prompts as one at a time."""
    from tqdm.auto import tqdm

    options = options or PromptOptions()
    indexes: dict[Path, object] = {}
    fits = [_Fit(ex, schema, db_path, options, keep_gold, stats, indexes)
            for ex, schema, db_path in tqdm(items, desc="prompts", unit="ex", disable=not progress)]
    pending = [f for f in fits if not f.done]
    bar = tqdm(total=len(pending), desc=f"prompts: fitting to {options.max_prompt_tokens} tokens", unit="ex",
               disable=not progress or not pending)
    while pending:
        for start in range(0, len(pending), _COUNT_BATCH):
            chunk = pending[start: start + _COUNT_BATCH]
            for fit, n in zip(chunk, count_many(options.count_tokens, [f.candidate for f in chunk])):
                fit.feed(n)
        still = [f for f in pending if not f.done]
        bar.update(len(pending) - len(still))
        pending = still
    bar.close()
    return [(f.prompt, f.dropped) for f in fits]


_COUNT_BATCH = 1024  # candidate prompts per tokenizer call


def count_many(count_tokens: Callable[[str], int], texts: list[str]) -> list[int]:
    """Token counts of `texts`: in one call when the counter has a `many` method (`token_counter`'s does)."""
    many = getattr(count_tokens, "many", None)
    return list(many(texts)) if many is not None else [count_tokens(t) for t in texts]


class _Fit:
    """One example's search for the longest prompt within the budget, driven by whoever counts tokens: the full
    prompt; if over, the shortest one (every drop step taken); if that fits, bisection over the drop order.
    `candidate` is the prompt to count next, `feed` takes its count; at the end `done`, `prompt`, `dropped`."""

    def __init__(self, example: Example, schema: Schema, db_path: Path | None, options: PromptOptions,
                 keep_gold: bool, stats: PromptStats | None, indexes: dict[Path, object]) -> None:
        self.example, self.schema, self.keep_gold, self.stats = example, schema, keep_gold, stats
        self.samples, self.matched = _values_for(schema, db_path, example, options, indexes)
        self.budget = options.max_prompt_tokens
        self.phase = "full"  # then "shortest", then "bisect"
        self.steps: list[set[Key]] = []
        self.lo = self.hi = self.mid = 0  # during bisection: lo does not fit, hi fits
        self.done, self.prompt, self.dropped = False, "", set()
        if stats is not None:
            stats.total += 1
        self.candidate = self._render(set())
        if self.budget is None:
            self._finish_at(0)

    def _render(self, dropped: set[Key]) -> str:
        return _render(self.schema, dropped, self.samples, self.matched, self.example)

    def _finish_at(self, k: int) -> None:
        """Done, with the first `k` drop steps taken."""
        self.dropped = set().union(*self.steps[:k])
        self.prompt = self.candidate if k == 0 else self._render(self.dropped)
        self.done = True

    def _over_budget(self) -> None:
        if self.stats is not None:
            self.stats.over_budget += 1
        self._finish_at(len(self.steps))

    def _bisect(self) -> None:
        if self.hi - self.lo <= 1:
            return self._finish_at(self.hi)
        self.mid = (self.lo + self.hi) // 2
        self.candidate = self._render(set().union(*self.steps[: self.mid]))
        return None

    def feed(self, count: int) -> None:
        fits = count <= self.budget
        if self.phase == "full":
            if fits:
                return self._finish_at(0)
            if self.stats is not None:
                self.stats.shortened += 1
            steps = _drop_steps(self.schema, self.matched, f"{self.example.question} {self.example.evidence}")
            if self.keep_gold:
                protected = gold_items(self.example.sql, self.schema)
                steps = [s for s in (s - protected for s in steps) if s]
            self.steps = steps
            if not steps:  # nothing may be dropped: the full prompt is also the shortest
                return self._over_budget()
            self.phase, self.candidate = "shortest", self._render(set().union(*steps))
            return None
        if self.phase == "shortest":
            if not fits:
                return self._over_budget()
            self.phase, self.lo, self.hi = "bisect", 0, len(self.steps)
            return self._bisect()
        if fits:
            self.hi = self.mid
        else:
            self.lo = self.mid
        return self._bisect()


# ------------------------------------------------------------------- a split's prompts, and their saved options
# Training, `kidsql predict` and the demo/bench all build prompts here, and a trained model folder records the
# options it was trained with (`prompt_options.json`), so evaluation prompts are the training prompts.

PROMPT_OPTIONS_FILE = "prompt_options.json"
_SAVED_FIELDS = ("num_sample_values", "with_values", "with_matched_values", "max_matched_per_column",
                 "max_prompt_tokens")


def build_prompts(bench: Benchmark, examples: list[Example], options: PromptOptions | None = None, *,
                  keep_gold: bool = False, stats: PromptStats | None = None) -> list[str]:
    """Prompts for `examples` of `bench`, in order, with a progress bar on long splits (`keep_gold`, `stats`: see
    `build_prompt`)."""
    from kidsql.errors import KidsqlError

    items = []
    for ex in examples:
        if ex.db_id not in bench.schemas:
            raise KidsqlError(f"{bench.name}: no schema for db_id {ex.db_id!r}; add it to tables.json")
        db_path = bench.db_path(ex.db_id)
        items.append((ex, bench.schemas[ex.db_id], db_path if db_path.is_file() else None))
    fitted = fit_prompts(items, options, keep_gold=keep_gold, stats=stats, progress=len(items) >= 200)
    return [prompt for prompt, _ in fitted]


def save_prompt_options(options: PromptOptions, model_dir: Path) -> Path:
    """Write the options a model was trained with beside its weights (the token counter is not saved)."""
    import json

    path = Path(model_dir) / PROMPT_OPTIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: getattr(options, k) for k in _SAVED_FIELDS}, indent=1), encoding="utf-8")
    return path


def read_prompt_options(model_dir: Path) -> dict:
    """The saved PromptOptions fields of a model folder ({} when it has none); a bad file is a one-line error."""
    import json

    from kidsql.errors import KidsqlError

    path = Path(model_dir) / PROMPT_OPTIONS_FILE
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise KidsqlError(f"{path}: malformed JSON ({err.msg}); fix or delete the file") from None
    if not isinstance(saved, dict) or set(saved) - set(_SAVED_FIELDS):
        unknown = sorted(set(saved) - set(_SAVED_FIELDS)) if isinstance(saved, dict) else saved
        raise KidsqlError(f"{path}: unknown prompt options {unknown}; allowed keys: {sorted(_SAVED_FIELDS)}")
    return saved
