"""The embedded benchmark: a small Spider-layout text-to-SQL benchmark generated offline in seconds.

It exists so that kidsql's whole story (tiny teacher, distilled students, EX/TS evaluation, robustness
variants) runs on a 2-core CPU with no internet. It does not replace Spider or BIRD; see
docs/embedded-benchmark.md. Everything is deterministic for a seed, down to the bytes of every file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from kidsql.errors import KidsqlError

from .content import make_rows, write_sqlite
from .domains import DEV_DOMAINS, DOMAINS
from .examples import Checker, DrawOptions, build_split, make_variant, mix_variants
from .renames import renderings
from .writer import dump_json, record, tables_entry


@dataclass(frozen=True)
class Preset:
    """One benchmark size. `dev`: "cross-db" (Spider's setting: dev databases never seen in training; train
    databases are renamed renderings of the train domains, so names must be copied from the prompt) or
    "in-domain" (dev asks new queries of the training databases: a (db_id, SQL) of train never occurs in dev)."""

    n_train: int
    n_dev: int
    dev: str = "cross-db"
    renderings: int = 1  # cross-db: renamed renderings per train domain
    domains: int | None = None  # in-domain: the first N domains (None: all)
    draw: DrawOptions = DrawOptions()


# "cpu" is what a from-scratch tiny teacher learns on 2 CPU cores in minutes (docs/results/cpu-teacher-experiments.md):
# in-domain, 8 databases, easy shapes only, 4 values per column, 30 % of train questions worded by a robustness
# lexicon (so that the variant splits measure something; `mix_variants`). "cpu-medium" adds the medium shapes
# (joins, GROUP BY, ORDER BY ... LIMIT, two conditions: SQL 27 tokens on average on dev vs 20), to test whether
# longer SQL changes how the methods compare. "full" is the Spider-like cross-db one.
SIZES: dict[str, Preset] = {
    "small": Preset(400, 120, renderings=2),
    "full": Preset(8000, 1000, renderings=12),
    "cpu": Preset(6000, 400, dev="in-domain", domains=8,
                  draw=DrawOptions(levels=("e",), value_pool=4, train_variants=0.3)),
    "cpu-medium": Preset(6000, 400, dev="in-domain", domains=8,
                         draw=DrawOptions(levels=("e", "m"), value_pool=4, train_variants=0.3)),
}
TS_INSTANCES = 3
# Bump whenever the files generated for a (size, seed) change: caches of the benchmark (and of the teachers trained
# on it) are keyed by it, so an old cache is never mistaken for the current benchmark. 2: dev_dk words MAX/MIN as
# superlatives, dev_realistic words names as "called X" (cpu: dev_dk 4 -> 74, dev_realistic 21 -> 84 questions).
FORMAT_VERSION = 2
TOKENIZER_PROMPTS = 2000  # prompts repeat their schema; a sample is enough for the BPE merges


def generate_benchmark(out: Path, *, seed: int = 0, size: str = "small", vocab_size: int = 4000) -> Path:
    """Write the benchmark under `out` (Spider layout + `tokenizer/`) and return `out`."""
    if size not in SIZES:
        raise KidsqlError(f"unknown benchmark size {size!r} for {out}: use one of {', '.join(SIZES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    preset = SIZES[size]

    if preset.dev == "in-domain":
        train_doms = list(DOMAINS)[: preset.domains] if preset.domains else list(DOMAINS)
        dev_doms, all_doms = train_doms, train_doms
    else:
        # train: every train domain rendered `preset.renderings` times under other identifiers (renames.py), so
        # that names must be copied from the prompt; dev: the held-out domains under their own names
        train_doms = renderings([d for d in DOMAINS if d.db_id not in DEV_DOMAINS], preset.renderings, seed)
        dev_doms = [d for d in DOMAINS if d.db_id in DEV_DOMAINS]
        all_doms = train_doms + dev_doms
    base_rows = {}
    for dom in all_doms:
        for k in range(TS_INSTANCES + 1):
            rows = make_rows(dom, random.Random(f"{seed}:{dom.db_id}:{k}"))
            name = f"{dom.db_id}.sqlite" if k == 0 else f"{dom.db_id}_{k}.sqlite"
            write_sqlite(out / "database" / dom.db_id / name, dom, rows)
            if k == 0:
                base_rows[dom.db_id] = rows

    checker = Checker(out / "database", TS_INSTANCES)
    opts = preset.draw
    try:
        train = build_split("train", train_doms, base_rows, preset.n_train, seed, checker, opts)
        train = mix_variants(train, {d.db_id: d for d in train_doms}, base_rows, seed, opts)
        in_train = {(ex.db_id, ex.sql) for ex in train} if preset.dev == "in-domain" else None
        dev = build_split("dev", dev_doms, base_rows, preset.n_dev, seed, checker, opts, exclude=in_train)
    finally:
        checker.close()

    dump_json(out / "train.json", [record(ex) for ex in train])
    dump_json(out / "dev.json", [record(ex) for ex in dev])
    by_id = {d.db_id: d for d in all_doms}
    for name in ("syn", "realistic", "dk"):
        recs = []
        for i, ex in enumerate(dev):
            var = make_variant(name, ex, by_id[ex.db_id], base_rows[ex.db_id], opts)
            if var is not None:
                recs.append(record(var, {"dev_index": i, "base_question": ex.question, "changes": var.changes}))
        dump_json(out / f"dev_{name}.json", recs)
    dump_json(out / "tables.json", [tables_entry(d) for d in all_doms])

    from kidsql.data.tokenizer import train_tokenizer

    train_tokenizer(_tokenizer_corpus(out, train), out / "tokenizer", vocab_size=vocab_size)
    return out


def _tokenizer_corpus(out: Path, train) -> list[str]:
    """Train prompts and SQL, so tokens fit what the model sees. The schemas are the loader's own reading of
    tables.json, so the corpus is exactly what the trainer will prompt with."""
    from kidsql.data.spider import load_tables
    from kidsql.data.types import Example
    from kidsql.prompts import build_prompt

    schemas = load_tables(out / "tables.json")
    texts: list[str] = []
    for i, ex in enumerate(train):
        if i < TOKENIZER_PROMPTS:
            example = Example(ex.db_id, ex.question, ex.sql, id=f"train-{i}")
            db = out / "database" / ex.db_id / f"{ex.db_id}.sqlite"
            texts.append(build_prompt(example, schemas[ex.db_id], db))
        texts.append(ex.sql)
    return texts


__all__ = ["generate_benchmark", "Preset", "SIZES", "FORMAT_VERSION"]
