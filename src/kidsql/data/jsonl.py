"""kidsql's own plain benchmark format: one JSON object per line, databases in Spider's layout beside it.

Format (UTF-8, one example per line, blank lines ignored):

    {"db_id": "shop", "question": "How many products?", "sql": "SELECT count(*) FROM product",
     "evidence": "optional hint", "id": "optional-stable-id"}

Required fields: `db_id`, `question`, `sql`. Optional: `evidence` (a BIRD-style hint, default ""), `id`
(default `<split>-<line index>`, counting examples, not blank lines).

Where things are, for `path` a folder holding `<split>.jsonl` (or `path` the .jsonl file itself, split = its stem):
- databases: `<db_dir>/<db_id>/<db_id>.sqlite`, with `db_dir` given explicitly (`--db-dir`) or else the
  `database/` folder beside the file;
- schemas: `tables.json` beside the file (Spider format) when present; any db_id it lacks is read from the
  SQLite file.
"""

from __future__ import annotations

import json
from pathlib import Path

from kidsql.data.spider import load_tables
from kidsql.data.types import Example, Schema
from kidsql.errors import KidsqlError

REQUIRED = ("db_id", "question", "sql")


def list_splits(bench_dir: Path) -> list[str]:
    return sorted(p.stem for p in Path(bench_dir).glob("*.jsonl"))


def read_jsonl(path: Path, split: str, *, use_evidence: bool = True) -> list[Example]:
    """Examples of one JSONL file; errors name the file and the 1-based line."""
    out: list[Example] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise KidsqlError(f"{path}: file not found; check the benchmark path") from None
    except UnicodeDecodeError as err:
        raise KidsqlError(f"{path}: not UTF-8 ({err.reason}); re-encode the file as UTF-8") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise KidsqlError(f"{path}: malformed JSON at line {lineno} ({err.msg}); fix that line") from None
        if not isinstance(rec, dict):
            raise KidsqlError(f"{path}: line {lineno} is not a JSON object; write one object per line")
        for field in REQUIRED:
            if field not in rec:
                raise KidsqlError(
                    f"{path}: line {lineno} lacks the field {field!r}; add it (format: kidsql.data.jsonl)"
                )
        index = len(out)
        out.append(
            Example(
                db_id=str(rec["db_id"]),
                question=str(rec["question"]).strip(),
                sql=str(rec["sql"]).strip(),
                evidence=str(rec.get("evidence") or "").strip() if use_evidence else "",
                id=str(rec["id"]) if rec.get("id") is not None else f"{split}-{index}",
            )
        )
    return out


def resolve_jsonl(path: Path, split: str) -> tuple[Path, str]:
    """(the .jsonl file, the split name) for a folder + split or a direct file path."""
    path = Path(path)
    if path.is_file():
        return path, path.stem
    file = path / f"{split}.jsonl"
    if not file.is_file():
        have = ", ".join(list_splits(path)) or "none"
        raise KidsqlError(f"{file}: split {split!r} not found; splits present: {have}")
    return file, split


def load_jsonl_split(
    path: Path, split: str, *, db_dir: Path | None = None, use_evidence: bool = True
) -> tuple[list[Example], dict[str, Schema], Path]:
    """(examples, schemas from a tables.json beside the file (may be empty), database folder)."""
    file, split = resolve_jsonl(path, split)
    examples = read_jsonl(file, split, use_evidence=use_evidence)
    tables = file.parent / "tables.json"
    schemas = load_tables(tables) if tables.is_file() else {}
    return examples, schemas, Path(db_dir) if db_dir is not None else file.parent / "database"
