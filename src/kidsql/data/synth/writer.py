"""Spider-layout files: `tables.json` and the split JSON files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .domains import DomainDef
from .examples import Drawn


def dump_json(path: Path, obj: object) -> None:
    """Sorted keys, fixed indent, trailing newline: byte-identical output for identical content."""
    path.write_text(json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def tables_entry(dom: DomainDef) -> dict:
    """One database in Spider's `tables.json` format (column 0 is Spider's `*`)."""
    names, originals, types, pks, index = [[-1, "*"]], [[-1, "*"]], ["text"], [], {}
    for ti, t in enumerate(dom.tables):
        for c in t.columns:
            index[(t.name, c.name)] = len(names)
            names.append([ti, c.natural])
            originals.append([ti, c.name])
            types.append(c.spider_type)
            if c.kind == "id" or (t.is_junction and c.kind == "fk"):
                pks.append(index[(t.name, c.name)])
    fks = [[index[(t.name, c.name)], index[(p.name, p.pk.name)]] for t, c, p in dom.fks()]
    return {
        "db_id": dom.db_id,
        "table_names": [t.natural for t in dom.tables],
        "table_names_original": [t.name for t in dom.tables],
        "column_names": names,
        "column_names_original": originals,
        "column_types": types,
        "primary_keys": pks,
        "foreign_keys": fks,
    }


_TOK = re.compile(r"\w+|[^\w\s]")


def record(ex: Drawn, extra: dict | None = None) -> dict:
    rec = {"db_id": ex.db_id, "question": ex.question, "query": ex.sql,
           "question_toks": _TOK.findall(ex.question), "shape": ex.shape}
    rec.update(extra or {})
    return rec
