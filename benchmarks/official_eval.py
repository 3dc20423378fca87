"""The official test-suite evaluator's verdicts, row by row, and mutated predictions to ask it about.

Shared by `benchmarks/eval_speed.py` and `tests/test_official_agreement.py`. The official scripts are imported
from where they lie (`../shared/tools/test-suite-sql-eval`), never copied. `official_row` follows the steps of
its `evaluation.py` `evaluate()` with the leaderboard's default flags (no `--plug_value`, no `--keep_distinct`):
the prediction has "value" replaced by "1", the schema comes from the SQLite file, foreign keys from
`tables.json`, hardness from the parsed gold, EX/TS from `eval_exec_match` over every `.sqlite` file in the
database's folder. A step that raises gives no verdict for that metric (the whole script would stop there).
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_DIR = REPO.parent / "shared" / "tools" / "test-suite-sql-eval"


def official_available() -> str | None:
    """None when the official script can run here, else the reason it cannot (for a skip message)."""
    if not (OFFICIAL_DIR / "evaluation.py").is_file():
        return f"official evaluator absent: {OFFICIAL_DIR}"
    for module in ("nltk", "sqlparse"):
        try:
            __import__(module)
        except ImportError:
            return f"the official evaluator needs {module}: pip install -e '.[test]'"
    return None


def _official():
    if str(OFFICIAL_DIR) not in sys.path:
        sys.path.insert(0, str(OFFICIAL_DIR))
    import evaluation  # noqa: PLC0415 - the official script, from its own folder
    import exec_eval  # noqa: PLC0415
    import process_sql  # noqa: PLC0415

    return evaluation, exec_eval, process_sql


@dataclass
class OfficialRow:
    """The official verdicts for one row; None where the official script raises (it has no verdict there)."""

    hardness: str | None
    ex: bool | None
    em: bool | None


class Official:
    """The official script's per-row steps, with `tables.json`'s foreign-key maps loaded once."""

    def __init__(self, tables_json: Path) -> None:
        self.evaluation, self.exec_eval, self.process_sql = _official()
        self.kmaps = self.evaluation.build_foreign_key_map_from_json(str(tables_json))
        self._schemas: dict[str, object] = {}

    def schema(self, db_path: Path):
        key = str(db_path)
        if key not in self._schemas:
            self._schemas[key] = self.process_sql.Schema(self.process_sql.get_schema(key))
        return self._schemas[key]

    def row(self, gold: str, pred: str, db_id: str, db_path: Path, *, exec_db: Path | None = None,
            plug_value: bool = False, keep_distinct: bool = False, want_em: bool = True) -> OfficialRow:
        ev, get_sql = self.evaluation, self.process_sql.get_sql
        p_str = pred.replace("value", "1")
        schema = self.schema(db_path)
        try:
            g_sql = get_sql(schema, gold)
            hardness = ev.Evaluator().eval_hardness(g_sql)
        except Exception:  # noqa: BLE001 - the official script stops here: no verdict
            return OfficialRow(None, None, None)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                ex = bool(self.exec_eval.eval_exec_match(str(exec_db or db_path), p_str, gold, plug_value,
                                                         keep_distinct, False))
        except Exception:  # noqa: BLE001 - gold fails (its assert) or the prediction crashes the script
            ex = None
        em = None
        if want_em:
            try:
                try:
                    p_sql = get_sql(schema, p_str)
                except Exception:  # noqa: BLE001 - the official fallback: an empty query
                    p_sql = {"except": None, "from": {"conds": [], "table_units": []}, "groupBy": [], "having": [],
                             "intersect": None, "limit": None, "orderBy": [], "select": [False, []],
                             "union": None, "where": []}
                kmap = self.kmaps[db_id]
                g_sql = ev.rebuild_sql_col(ev.build_valid_col_units(g_sql["from"]["table_units"], schema),
                                           ev.rebuild_sql_val(g_sql), kmap)
                p_sql = ev.rebuild_sql_col(ev.build_valid_col_units(p_sql["from"]["table_units"], schema),
                                           ev.rebuild_sql_val(p_sql), kmap)
                em = bool(ev.Evaluator().eval_exact_match(p_sql, g_sql))
            except Exception:  # noqa: BLE001
                em = None
        return OfficialRow(hardness, ex, em)


# ---------------------------------------------------------------- mutations of a gold query

_AGG = {"count": "sum", "sum": "count", "max": "min", "min": "max", "avg": "max"}
_OPS = [(" >= ", " > "), (" <= ", " < "), (" > ", " < "), (" < ", " > "), (" != ", " = "), (" = ", " != "),
        (" LIKE ", " NOT LIKE ")]


def _sub_nth(pattern: str, repl, sql: str, n: int, flags: int = re.I) -> str | None:
    matches = list(re.finditer(pattern, sql, flags))
    if n >= len(matches):
        return None
    m = matches[n]
    new = repl(m) if callable(repl) else m.expand(repl)
    return sql[: m.start()] + new + sql[m.end():]


def _close_of(sql: str, open_at: int) -> int | None:
    depth = 0
    for i in range(open_at, len(sql)):
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def mutations(sql: str) -> list[tuple[str, str]]:
    """(kind, mutated SQL) pairs: the mistakes a model makes and the spellings the official rules forgive."""
    out: list[tuple[str, str]] = [("identity", sql)]

    def add(kind: str, new: str | None) -> None:
        if new is not None and new != sql:
            out.append((kind, new))

    add("distinct_add", _sub_nth(r"\bselect\s+(?!distinct)", "SELECT DISTINCT ", sql, 0))
    add("distinct_drop", _sub_nth(r"\bdistinct\s+", "", sql, 0))
    add("distinct_in_count", _sub_nth(r"\bcount\s*\(\s*(?!distinct|\*)", "count(DISTINCT ", sql, 0))
    add("distinct_lower", _sub_nth(r"\bselect\s+", "select distinct ", sql, 0))
    m = re.match(r"(?is)\s*select\s+(distinct\s+)?(.*?)\s+from\s", sql)
    if m:
        cols = _split_top(m.group(2))
        if len(cols) >= 2:
            cols[0], cols[1] = cols[1], cols[0]
            add("swap_columns", sql[: m.start(2)] + ", ".join(cols) + sql[m.end(2):])
            add("drop_column", sql[: m.start(2)] + ", ".join(cols[1:]) + sql[m.end(2):])
        add("dup_column", sql[: m.start(2)] + m.group(2) + ", " + cols[0] + sql[m.end(2):])
    add("order_desc_to_asc", _sub_nth(r"\bdesc\b", "ASC", sql, 0))
    add("order_asc_to_desc", _sub_nth(r"\basc\b", "DESC", sql, 0))
    add("order_add_desc", _sub_nth(r"(\border\s+by\s+[\w.()*]+)(?!\s+(asc|desc))", r"\1 DESC", sql, 0))
    add("order_drop", _sub_nth(r"\s+order\s+by\s+[\w.()*]+(\s+(asc|desc))?", "", sql, 0))
    add("order_add", None if re.search(r"order\s+by", sql, re.I) else _order_add(sql))
    # LIMIT at every nesting level: change its value, drop it, or add one to a sub-query.
    for n in range(3):
        add(f"limit_value_{n}", _sub_nth(r"\blimit\s+(\d+)", lambda mm: f"LIMIT {int(mm.group(1)) + 2}", sql, n))
        add(f"limit_drop_{n}", _sub_nth(r"\s+limit\s+\d+", "", sql, n))
    for n, opened in enumerate(re.finditer(r"\(\s*select\b", sql, re.I)):
        close = _close_of(sql, opened.start())
        if close is not None and n < 3:
            add(f"limit_add_nested_{n}", sql[:close] + " LIMIT 3" + sql[close:])
    add("limit_add_outer", None if re.search(r"\blimit\b", sql[-20:], re.I) else sql.rstrip().rstrip(";") + " LIMIT 1")
    for agg, new in _AGG.items():
        add(f"agg_{agg}", _sub_nth(rf"\b{agg}\s*\(", f"{new}(", sql, 0))
    for old, new in _OPS:
        if old in sql:
            add(f"op_{old.strip()}", sql.replace(old, new, 1))
    add("cond_drop_and", _sub_nth(r"\s+and\s+[^()]*?(?=\s+(and|or|group|order|limit|intersect|union|except)\b|\)|$)",
                                  "", sql, 0))
    add("cond_drop_where", _sub_nth(r"\s+where\s+[^()]*?(?=\s+(group|order|limit|intersect|union|except)\b|\)|$)",
                                    "", sql, 0))
    add("and_to_or", _sub_nth(r"\band\b(?![^(]*\bbetween\b)", "OR", sql, 0))
    add("case_lower", sql.lower())
    add("case_upper_keywords", re.sub(r"\b(select|from|where|group by|order by|join|on|as|and|or|limit)\b",
                                      lambda mm: mm.group(0).upper(), sql, flags=re.I))
    add("value_change", _sub_nth(r"'([^']*)'", lambda mm: "'" + mm.group(1)[::-1] + "'", sql, 0))
    add("number_change", _sub_nth(r"(?<![\w.])(\d+)(?![\w.])", lambda mm: str(int(mm.group(1)) + 1), sql, 0))
    add("double_quotes", _sub_nth(r"'([^'\"]*)'", r'"\1"', sql, 0))
    add("spaced_ops", sql.replace(">=", "> =").replace("<=", "< =").replace("!=", "! ="))
    add("syntax_paren", _sub_nth(r"\)", "", sql, 0))
    add("syntax_from", _sub_nth(r"\bfrom\b", "FORM", sql, 0))
    add("syntax_truncate", sql[: max(1, len(sql) * 2 // 3)])
    add("syntax_trailing_comma", _sub_nth(r"\s+from\s", ", FROM ", sql, 0))
    add("unknown_column", _sub_nth(r"\bselect\s+(distinct\s+)?([\w.]+)", r"SELECT \1nosuchcol", sql, 0))
    add("join_swap_on", _sub_nth(r"\bon\s+([\w.]+)\s*=\s*([\w.]+)", r"ON \2 = \1", sql, 0))
    add("join_wrong_key", _sub_nth(r"\bon\s+(\w+)\.([\w]+)\s*=\s*(\w+)\.(\w+)", r"ON \1.\2 = \1.\2", sql, 0))
    add("join_to_comma", _sub_nth(r"\s+join\s+([\w]+(\s+as\s+\w+)?)\s+on\s+[\w.]+\s*=\s*[\w.]+",
                                  r" , \1", sql, 0))
    add("value_word", _sub_nth(r"'[^']*'", "value", sql, 0))
    add("semicolon", sql.rstrip() + ";")
    add("empty", "")
    return out


def _order_add(sql: str) -> str | None:
    m = re.match(r"(?is)\s*select\s+(distinct\s+)?([\w.]+)", sql)
    if not m or re.search(r"\b(intersect|union|except|limit)\b", sql, re.I):
        return None
    return sql.rstrip().rstrip(";") + f" ORDER BY {m.group(2)}"


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def mutated_rows(golds: list, *, seed: int = 0, per_gold: int | None = None) -> list[tuple[int, str, str]]:
    """(gold index, mutation kind, predicted SQL) for every gold; `per_gold` samples that many kinds (seeded)."""
    rng = random.Random(seed)
    rows = []
    for i, g in enumerate(golds):
        muts = mutations(g.sql)
        if per_gold is not None and len(muts) > per_gold:
            muts = [muts[0]] + rng.sample(muts[1:], per_gold - 1)
        rows += [(i, kind, sql) for kind, sql in muts]
    return rows
