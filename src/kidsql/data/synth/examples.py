"""Drawing checked question/SQL pairs for a split, and rewording dev into its robustness variants."""

from __future__ import annotations

import random
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .content import Rows
from .domains import DomainDef
from .grammar import SHAPES, Ctx, Lexicon, Select, Skip, draw_shape
from .variants import VARIANTS

MAX_ATTEMPTS = 60


@dataclass
class Drawn:
    db_id: str
    key: str  # seeds the random stream; re-drawing with the same key and another lexicon gives the same SQL
    shape: str
    select: Select
    question: str
    changes: list[dict[str, str]] = field(default_factory=list)

    @property
    def sql(self) -> str:
        return self.select.sql()


_A_AN = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def articles(text: str) -> str:
    """`a` -> `an` before a vowel: templates say "a {table}", and the table may be an artwork."""
    return _A_AN.sub(lambda m: m.group(1) + "n ", text)


@dataclass(frozen=True)
class DrawOptions:
    """What a benchmark preset restricts: the shape levels (e/m/h/x) and the values per column questions use,
    and the share of train questions worded by a robustness lexicon (`train_variants`, see `mix_variants`)."""

    levels: tuple[str, ...] = ("e", "m", "h", "x")
    value_pool: int | None = None
    train_variants: float = 0.0


def draw(dom: DomainDef, rows: Rows, key: str, lex: Lexicon | None = None, opts: DrawOptions = DrawOptions()) -> Drawn:
    rng = random.Random(key)
    shape = draw_shape(rng, opts.levels)
    lex = lex or Lexicon()
    select, question = SHAPES[shape][0](Ctx(dom, rows, rng, lex, opts.value_pool))
    question = articles(question)
    changes = [{k: articles(v) for k, v in ch.items()} for ch in lex.changes]
    # templates format every slot, used or not: keep only the changes that made it into the question
    changes = [ch for i, ch in enumerate(changes) if ch["to"] in question and ch not in changes[:i]]
    return Drawn(dom.db_id, key, shape, select, question, changes)


class Checker:
    """Runs gold SQL on every instance of its database (read-only) and keeps the connections open."""

    def __init__(self, db_root: Path, instances: int) -> None:
        self.db_root, self.instances = db_root, instances
        self._conns: dict[tuple[str, int], sqlite3.Connection] = {}

    def _conn(self, db_id: str, k: int) -> sqlite3.Connection:
        if (db_id, k) not in self._conns:
            name = f"{db_id}.sqlite" if k == 0 else f"{db_id}_{k}.sqlite"
            self._conns[(db_id, k)] = sqlite3.connect(f"file:{self.db_root / db_id / name}?mode=ro", uri=True)
        return self._conns[(db_id, k)]

    def ok(self, db_id: str, sql: str) -> bool:
        """True when the query runs on every instance and gives a non-empty, non-NULL answer on the main one."""
        try:
            for k in range(self.instances + 1):
                rows = self._conn(db_id, k).execute(sql).fetchall()
                if k == 0 and (not rows or all(v is None for v in rows[0])):
                    return False
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def build_split(split: str, domains: list[DomainDef], rows: dict[str, Rows], n: int, seed: int,
                checker: Checker, opts: DrawOptions = DrawOptions(),
                exclude: set[tuple[str, str]] | None = None) -> list[Drawn]:
    """`n` examples spread round-robin over `domains`; failed, empty or duplicate draws are redrawn, and so are
    draws whose (db_id, SQL) is in `exclude` (in-domain dev: no query of train)."""
    out: list[Drawn] = []
    seen: set[tuple[str, str]] = set()
    exclude = exclude or set()
    for i in tqdm(range(n), desc=f"synth {split}", disable=None, leave=False):
        dom = domains[i % len(domains)]
        for attempt in range(MAX_ATTEMPTS):
            key = f"{seed}:{split}:{i}:{attempt}"
            try:
                ex = draw(dom, rows[dom.db_id], key, opts=opts)
            except Skip:
                continue
            if ((dom.db_id, ex.question) in seen or (dom.db_id, ex.sql) in exclude
                    or not checker.ok(dom.db_id, ex.sql)):
                continue
            seen.add((dom.db_id, ex.question))
            out.append(ex)
            break
    return out


def _mentions(text: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}", text) is not None


def make_variant(name: str, base: Drawn, dom: DomainDef, rows: Rows, opts: DrawOptions = DrawOptions()) -> Drawn | None:
    """The same example worded by variant `name`, or None when the variant does not apply to it."""
    ex = draw(dom, rows, base.key, VARIANTS[name](), opts)
    assert ex.sql == base.sql, f"variant {name} changed the SQL of {base.key}"
    if not ex.changes or ex.question == base.question:
        return None
    if name == "realistic" and any(_mentions(ex.question, ch["column"]) for ch in ex.changes if "column" in ch):
        return None  # the column is still named elsewhere in the question: not a realistic rewording
    return ex


def mix_variants(train: list[Drawn], by_id: dict[str, DomainDef], rows: dict[str, Rows], seed: int,
                 opts: DrawOptions) -> list[Drawn]:
    """Train with a share `opts.train_variants` of its questions worded by a robustness lexicon (the first of
    dk, realistic, syn that applies: the rarer ones first, or dk would almost never occur), the SQL unchanged.

    A model trained from scratch has no other source for "vocalist" = singer or "adults" = age >= 18: without
    such questions in train, the robustness splits measure only what no tiny model can know (all near 0). With
    them, the variant wordings are rare in train and the rule in the variant splits, which is what the splits
    test for a pretrained model too (`docs/embedded-benchmark.md`)."""
    if opts.train_variants <= 0:
        return train
    out = []
    for i, ex in enumerate(train):
        rng = random.Random(f"{seed}:train-variant:{i}")
        var = None
        if rng.random() < opts.train_variants:
            for name in ("dk", "realistic", "syn"):
                var = make_variant(name, ex, by_id[ex.db_id], rows[ex.db_id], opts)
                if var is not None:
                    break
        out.append(var or ex)
    return out
