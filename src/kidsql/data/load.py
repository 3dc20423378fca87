"""One entry point for every benchmark layout: `load_benchmark(path, split)` -> `Benchmark`.

The layout is detected from the files present (see `detect_kind`), so the CLI takes a folder and a split
and never asks the user what kind of benchmark it is. Schemas come from the layout's tables.json; a db_id it
lacks (or a layout without one) is read from the SQLite file itself, and only an example whose database is
neither described nor present is an error.

Folders are taken as they ship: BIRD's `train/` and `dev/` sub-folders (each with `<split>.json`,
`<split>_tables.json`, `<split>_databases/`) are found from the root folder, and Spider's training set, shipped
as `train_spider.json` + `train_others.json`, is the split "train" (see `kidsql.data.spider`).
"""

from __future__ import annotations

from pathlib import Path

from kidsql.data import bird, jsonl, spider
from kidsql.data.sqlite_schema import read_schema
from kidsql.data.types import Benchmark, Example, Schema
from kidsql.errors import KidsqlError

KINDS = ("auto", "spider", "bird", "jsonl")


def split_folder(path: Path, split: str) -> Path:
    """The folder that holds `split`: `path` itself, or BIRD's `path/<split>/` sub-folder as shipped."""
    path = Path(path)
    sub = path / split
    if path.is_dir() and not (path / f"{split}.json").is_file() and (sub / f"{split}.json").is_file():
        return sub
    return path


def evaluation_splits(path: Path, train_split: str = "train") -> list[str]:
    """The question splits a folder holds besides the training ones, in a stable order (dev first): the splits a
    bench evaluates on by default. Spider's `train_spider`/`train_others` count as training."""
    path = Path(path)
    if path.is_file():
        return [path.stem]
    names = set(list_splits(path)) if _has_questions(path) else set()
    names |= {p.name for p in path.iterdir() if p.is_dir() and (p / f"{p.name}.json").is_file()}
    training = {train_split, "train", "train_spider", "train_others"}
    rest = sorted(n for n in names if n not in training)
    return sorted(rest, key=lambda n: (not n.startswith("dev"), n))


def _has_questions(path: Path) -> bool:
    return any(path.glob("*.json")) or any(path.glob("*.jsonl"))


def detect_kind(path: Path, split: str = "dev") -> str:
    """"jsonl" for a .jsonl file or a folder of them, "bird" for `<split>_tables.json`/`<split>_databases`,
    "spider" for `<split>.json`/tables.json/database; an error for anything else."""
    path = Path(path)
    if path.is_file():
        if path.suffix == ".jsonl":
            return "jsonl"
        raise KidsqlError(f"{path}: pass the benchmark folder (or a .jsonl file), not this file")
    if not path.is_dir():
        raise KidsqlError(f"{path}: benchmark folder not found; check the path")
    if (path / f"{split}.jsonl").is_file():
        return "jsonl"
    if bird.is_bird_dir(path, split):
        return "bird"
    if (path / f"{split}.json").is_file() or (path / "tables.json").is_file() or (path / "database").is_dir():
        return "spider"
    if jsonl.list_splits(path):
        return "jsonl"
    if any(path.glob("*_tables.json")):
        return "bird"
    raise KidsqlError(
        f"{path}: not a benchmark folder (no <split>.json, tables.json, database/ or *.jsonl); "
        "see kidsql.data.load for the layouts"
    )


def list_splits(path: Path, kind: str = "auto") -> dict[str, int]:
    """{split: number of examples} for every split file present, counted without building schemas."""
    path = Path(path)
    kind = detect_kind(path) if kind == "auto" else kind
    out: dict[str, int] = {}
    if kind == "jsonl":
        files = [path] if path.is_file() else sorted(path.glob("*.jsonl"))
        for f in files:
            out[f.stem] = sum(1 for line in f.read_text(encoding="utf-8").splitlines() if line.strip())
        return out
    names = bird.list_splits(path) if kind == "bird" else spider.list_splits(path)
    for name in names:
        data = spider.read_json(path / f"{name}.json")
        if isinstance(data, list) and (not data or isinstance(data[0], dict) and "question" in data[0]):
            out[name] = len(data)
    return out


def _fill_schemas(
    examples: list[Example], schemas: dict[str, Schema], db_dir: Path, source: Path, kind: str
) -> dict[str, Schema]:
    """Read from SQLite every schema the examples need but tables.json lacks; name both when neither exists."""
    first_use = {}
    for e in examples:
        first_use.setdefault(e.db_id, e.id)
    for db_id, example_id in first_use.items():
        if db_id in schemas:
            continue
        db_path = db_dir / db_id / f"{db_id}.sqlite"
        if not db_path.is_file():
            raise KidsqlError(
                f"{source}: example {example_id} uses unknown db_id {db_id!r}: not in tables.json and no database "
                f"at {db_path}; add the database or fix the db_id"
            )
        schema = read_schema(db_path, db_id)
        if kind == "bird":
            bird.with_descriptions(schema, db_path.parent)
        schemas[db_id] = schema
    return schemas


def load_benchmark(
    path: Path,
    split: str = "dev",
    *,
    kind: str = "auto",
    use_evidence: bool = True,
    db_dir: Path | None = None,
) -> Benchmark:
    """Examples + schemas + database folder of one split. `db_dir` overrides where the SQLite files are."""
    path = Path(path)
    if kind not in KINDS:
        raise KidsqlError(f"--kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    root, path = path, split_folder(path, split)
    if kind == "auto":
        kind = detect_kind(path, split)
    if kind == "jsonl":
        examples, schemas, found_db_dir = jsonl.load_jsonl_split(path, split, db_dir=db_dir, use_evidence=use_evidence)
        if path.is_file():
            split = path.stem
    elif kind == "bird":
        examples, schemas, found_db_dir = bird.load_bird_split(path, split, use_evidence=use_evidence)
    else:
        examples, schemas, found_db_dir = spider.load_spider_split(path, split)
        if not use_evidence:
            for e in examples:
                e.evidence = ""
    final_db_dir = Path(db_dir) if db_dir is not None else found_db_dir
    _fill_schemas(examples, schemas, final_db_dir, path, kind)
    name = f"{root.stem if root.is_file() else root.name}/{split}"
    return Benchmark(name=name, examples=examples, schemas=schemas, db_dir=final_db_dir)

