"""A benchmark split's prompts, fitted to a tokenizer's budget and cached on disk.

Why cached: fitting thousands of prompts to a token budget takes seconds to a minute, and a demo or bench trains
many models (and evaluates learning curves) on the same prompts. The cache key holds everything that decides the
prompts: the data files (names, sizes, mtimes), split, limit, prompt options, the tokenizer's vocabulary and
whether the gold SQL's items are kept, so a changed input never reuses stale prompts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from kidsql.errors import KidsqlError
from kidsql.files import cache_key, write_atomic
from kidsql.prompts import PromptOptions, PromptStats


def prompt_options(tokenizer: Any, *, max_prompt_tokens: int, num_sample_values: int,
                   matched_values: bool) -> PromptOptions:
    """The PromptOptions of a run, counted in `tokenizer`'s tokens; saved beside a trained model so evaluation
    builds the same prompts."""
    from kidsql.prompts import token_counter

    return PromptOptions(num_sample_values=num_sample_values, with_values=num_sample_values > 0,
                         with_matched_values=matched_values, max_prompt_tokens=max_prompt_tokens,
                         count_tokens=token_counter(tokenizer))


def build_split_prompts(data: str | Path, split: str, tokenizer: Any, options: PromptOptions, *,
                        limit: int | None = None, kind: str = "auto", use_evidence: bool = True,
                        with_groups: bool = False, keep_gold: bool = False,
                        stats: PromptStats | None = None) -> tuple[list[str], ...]:
    """Prompts and gold SQL of the first `limit` examples of `split` of `data` (and, with `with_groups`, each
    example's database: the batching key of the shared schema prefix). `keep_gold` (training): the budget never
    drops what the gold SQL uses; `stats` receives the counts of shortened prompts (cached with them)."""
    from kidsql.data.load import load_benchmark
    from kidsql.prompts import build_prompts

    bench = load_benchmark(Path(data), split, kind=kind, use_evidence=use_evidence)
    examples = bench.examples[:limit] if limit else bench.examples
    if not examples:
        raise KidsqlError(f"{data}: split {split!r} has no examples; pick another --split")
    cached = prompt_cache_file(data, split, tokenizer, options, limit=limit, kind=kind, use_evidence=use_evidence,
                               keep_gold=keep_gold)
    entry = _read_prompts(cached, len(examples))
    if entry is None:
        built = PromptStats()
        prompts = build_prompts(bench, examples, options, keep_gold=keep_gold, stats=built)
        entry = {"prompts": prompts, "stats": asdict(built)}
        write_atomic(cached, json.dumps(entry))
    if stats is not None:
        for name, value in entry["stats"].items():
            setattr(stats, name, value)
    sqls = [e.sql for e in examples]
    return (entry["prompts"], sqls, [e.db_id for e in examples]) if with_groups else (entry["prompts"], sqls)


def prompt_cache_file(data: str | Path, split: str, tokenizer: Any, options: PromptOptions, *, limit: int | None,
                      kind: str, use_evidence: bool, keep_gold: bool) -> Path:
    """Where the prompts of this (data files, split, prompt options, tokenizer) are cached."""
    from kidsql.paths import cache_dir

    data = Path(data).resolve()
    files = [p for p in data.iterdir() if p.is_file()] if data.is_dir() else [data]
    stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    db_dir = data / "database"
    ident = {"data": str(data), "files": stats, "db_mtime": db_dir.stat().st_mtime_ns if db_dir.is_dir() else None,
             "split": split, "keep_gold": keep_gold, "kind": kind, "evidence": use_evidence, "limit": limit,
             "options": {f.name: getattr(options, f.name) for f in fields(options) if f.name != "count_tokens"},
             "vocab": cache_key(sorted(tokenizer.get_vocab().items()), None),
             "tokenizer": type(tokenizer).__name__}
    return cache_dir() / "prompts" / f"{cache_key(ident, 20)}.json"


def _read_prompts(path: Path, n: int) -> dict[str, Any] | None:
    """The cached entry when it is whole and holds `n` prompts, else None (then the prompts are built again)."""
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(entry, dict) and isinstance(entry.get("prompts"), list) and len(entry["prompts"]) == n
    return entry if ok and isinstance(entry.get("stats"), dict) else None
