"""Score predicted SQL against gold SQL by running both: EX, TS (test-suite) and EM, broken down by hardness.

Choices, so that numbers are comparable and honest:

* Every query, gold included, runs in `kidsql.sql.sandbox` (gold files are input we did not write either).
* A gold query that fails is an example we cannot judge: its verdict is ``gold_error`` with SQLite's reason, it is
  counted in the summary, and it is **excluded** from every accuracy denominator (EX, TS and EM alike), so the
  three metrics are always over the same examples. The run goes on.
* TS: a prediction is right only if it matches the gold on every database instance of its ``db_id`` found in
  ``suite_dir/database/<db_id>/*.sqlite`` or ``suite_dir/<db_id>/*.sqlite``. Instances where the *gold* fails
  are skipped (and said so in the reason). Without a suite (or for a ``db_id`` missing from it) TS falls back
  to the single database, i.e. TS equals EX there; the report's notes say so.
* Gold results are cached on disk under ``cache_dir()/gold_results/``, keyed by the database file (path, size,
  mtime), the SQL and the sandbox caps, so a second evaluation against the same gold executes no gold query.
  Timeouts and memory failures are not cached (they may pass on a less loaded machine).
* Work runs in a process pool, one task per example (gold + prediction on every instance, hardness, EM), so
  each core holds its own sandboxed connections and nothing is shared but the cache files (written atomically).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kidsql.data.types import Example, Schema
from kidsql.errors import KidsqlError
from kidsql.sql import sandbox
from kidsql.sql.compare import SEMANTICS, order_matters, results_match

HARDNESS_LEVELS = ("easy", "medium", "hard", "extra")
METRICS = ("ex", "ts", "em")
VERDICTS = ("ok", "mismatch", "pred_error", "gold_error")
CACHE_VERSION = 1
DEFAULT_TIMEOUT_S = sandbox.DEFAULT_TIMEOUT_S


@dataclass
class Verdict:
    """The judgement of one example. `ex`/`ts`/`em` are None when not computed or when the gold failed."""

    index: int
    db_id: str
    hardness: str
    verdict: str  # one of VERDICTS, about the main database (EX)
    reason: str = ""
    ex: bool | None = None
    ts: bool | None = None
    em: bool | None = None
    ts_instances: int = 0
    gold: str = ""
    pred: str = ""


@dataclass
class EvalReport:
    """Per-example verdicts plus the summary by hardness; what `kidsql evaluate` prints and writes."""

    verdicts: list[Verdict]
    metrics: tuple[str, ...]
    semantics: str
    notes: list[str] = field(default_factory=list)
    gold_executed: int = 0
    gold_cache_hits: int = 0
    elapsed_s: float = 0.0

    @property
    def gold_errors(self) -> int:
        return sum(v.verdict == "gold_error" for v in self.verdicts)

    def verdict_counts(self) -> dict[str, int]:
        return {name: sum(v.verdict == name for v in self.verdicts) for name in VERDICTS}

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Per hardness level and "all": count, gold errors, scored examples, and EX/TS/EM in percent."""
        levels = list(HARDNESS_LEVELS)
        levels += sorted({v.hardness for v in self.verdicts} - set(levels))
        out: dict[str, dict[str, float | int | None]] = {}
        for level in levels + ["all"]:
            group = [v for v in self.verdicts if level == "all" or v.hardness == level]
            if level not in HARDNESS_LEVELS and level != "all" and not group:
                continue
            scored = [v for v in group if v.verdict != "gold_error"]
            row: dict[str, float | int | None] = {
                "count": len(group),
                "gold_errors": len(group) - len(scored),
                "scored": len(scored),
            }
            for metric in METRICS:
                values = [getattr(v, metric) for v in scored]
                row[metric] = (
                    100.0 * sum(bool(x) for x in values) / len(values)
                    if metric in self.metrics and scored and all(x is not None for x in values)
                    else None
                )
            out[level] = row
        return out

    def to_markdown(self) -> str:
        def pct(x: float | int | None) -> str:
            return "-" if x is None else f"{x:.1f}"

        lines = ["| hardness | count | gold errors | EX | TS | EM |", "|---|---:|---:|---:|---:|---:|"]
        for level, row in self.summary().items():
            lines.append(
                f"| {level} | {row['count']} | {row['gold_errors']} | {pct(row['ex'])} | {pct(row['ts'])} | "
                f"{pct(row['em'])} |"
            )
        counts = ", ".join(f"{k} {n}" for k, n in self.verdict_counts().items())
        lines += [
            "",
            f"Semantics: {self.semantics}. Verdicts: {counts}. Accuracies exclude the {self.gold_errors} examples "
            "whose gold query fails.",
            f"Gold queries executed: {self.gold_executed}, taken from cache: {self.gold_cache_hits}. "
            f"Time: {self.elapsed_s:.1f} s.",
        ]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "semantics": self.semantics,
            "metrics": list(self.metrics),
            "summary": self.summary(),
            "verdict_counts": self.verdict_counts(),
            "gold_errors": self.gold_errors,
            "gold_executed": self.gold_executed,
            "gold_cache_hits": self.gold_cache_hits,
            "elapsed_s": round(self.elapsed_s, 3),
            "notes": self.notes,
            "examples": [asdict(v) for v in self.verdicts],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """`report.md` and `results.json` in `out_dir` (created)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        md, js = out_dir / "report.md", out_dir / "results.json"
        md.write_text(self.to_markdown(), encoding="utf-8")
        js.write_text(self.to_json(), encoding="utf-8")
        return md, js


# ---------------------------------------------------------------- gold-result cache


def _encode(value: object) -> object:
    return {"b64": base64.b64encode(value).decode("ascii")} if isinstance(value, bytes) else value


def _decode(value: object) -> object:
    return base64.b64decode(value["b64"]) if isinstance(value, dict) else value


def _cache_file(root: Path, db_path: Path, sql: str) -> Path:
    st = db_path.stat()
    ident = [
        CACHE_VERSION, os.path.abspath(db_path), st.st_size, st.st_mtime_ns, sql,
        sandbox.DEFAULT_MAX_ROWS, sandbox.DEFAULT_MAX_BYTES, sandbox.DEFAULT_MAX_VALUE_BYTES,
    ]
    key = hashlib.sha256(json.dumps(ident, ensure_ascii=False).encode("utf-8")).hexdigest()
    return root / key[:2] / f"{key}.json"


def _cache_load(path: Path) -> sandbox.ExecResult | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = None if data["rows"] is None else [tuple(_decode(v) for v in r) for r in data["rows"]]
        return sandbox.ExecResult(data["ok"], rows, data["columns"], data["error"], 0.0)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or corrupt: recompute


def _cache_store(path: Path, res: sandbox.ExecResult) -> None:
    if not res.ok and res.error and res.error.startswith(("timeout", "memory", "cannot open", "database not found")):
        return
    rows = None if res.rows is None else [[_encode(v) for v in r] for r in res.rows]
    payload = {"ok": res.ok, "rows": rows, "columns": res.columns, "error": res.error}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a parallel worker never reads half a file
    except OSError:
        pass  # a read-only cache only costs speed


# ---------------------------------------------------------------- one example (runs in a worker)


@dataclass(frozen=True)
class _Task:
    index: int
    gold: str
    pred: str
    db_id: str
    db_path: Path
    suite: tuple[Path, ...]  # TS instances; empty when TS is not asked for
    schema: Schema | None
    hardness: str
    want_em: bool
    semantics: str
    timeout_s: float
    cache_root: Path | None


@dataclass
class _Outcome:
    verdict: Verdict
    gold_executed: int = 0
    gold_cache_hits: int = 0


def _gold(task: _Task, db_path: Path, out: _Outcome) -> sandbox.ExecResult:
    path = _cache_file(task.cache_root, db_path, task.gold) if task.cache_root else None
    if path is not None:
        cached = _cache_load(path)
        if cached is not None:
            out.gold_cache_hits += 1
            return cached
    res = sandbox.execute(db_path, task.gold, timeout_s=task.timeout_s)
    out.gold_executed += 1
    if path is not None:
        _cache_store(path, res)
    return res


def _hardness(task: _Task) -> str:
    if task.hardness:
        return task.hardness
    try:
        from kidsql.sql.hardness import hardness
    except ImportError:
        return "unknown"
    try:
        return hardness(task.gold, task.schema)
    except Exception:  # noqa: BLE001 - a gold the parser cannot read still gets judged by execution
        return "unknown"


def _exact_match(task: _Task) -> bool | None:
    if not task.want_em or task.schema is None:
        return None
    from kidsql.sql.exact_match import exact_match

    try:
        return bool(exact_match(task.gold, task.pred, task.schema))
    except Exception:  # noqa: BLE001 - unparsable predictions are simply not an exact match
        return False


def _test_suite(task: _Task, ex: bool, out: _Outcome) -> tuple[bool, str]:
    """TS over every instance; the main database's EX verdict is reused rather than re-run."""
    ordered = order_matters(task.gold)
    skipped = 0
    for inst in task.suite:
        if inst == task.db_path:
            if not ex:
                return False, f"TS: wrong on {inst.name}"
            continue
        gold = _gold(task, inst, out)
        if not gold.ok:
            skipped += 1
            continue
        pred = sandbox.execute(inst, task.pred, timeout_s=task.timeout_s)
        if not pred.ok:
            return False, f"TS: prediction fails on {inst.name}: {pred.error}"
        if not results_match(gold.rows, pred.rows, order_matters=ordered, semantics=task.semantics):
            return False, f"TS: results differ on {inst.name}"
    note = f"TS: gold fails on {skipped} instance(s), skipped" if skipped else ""
    return ex, note


def judge(task: _Task) -> _Outcome:
    """Everything about one example; module-level so a process pool can pickle it."""
    v = Verdict(task.index, task.db_id, _hardness(task), "ok", gold=task.gold, pred=task.pred)
    out = _Outcome(v)
    gold = _gold(task, task.db_path, out)
    if not gold.ok:
        v.verdict, v.reason = "gold_error", f"gold fails: {gold.error}"
        return out
    pred = sandbox.execute(task.db_path, task.pred, timeout_s=task.timeout_s)
    if not pred.ok:
        v.verdict, v.reason, v.ex = "pred_error", pred.error or "error", False
    else:
        v.ex = results_match(gold.rows, pred.rows, order_matters=order_matters(task.gold), semantics=task.semantics)
        if not v.ex:
            v.verdict = "mismatch"
            v.reason = f"results differ: gold {len(gold.rows or [])} rows, prediction {len(pred.rows)} rows"
    if task.suite:
        v.ts_instances = len(task.suite)
        v.ts, ts_reason = _test_suite(task, bool(v.ex), out)
        v.reason = "; ".join(r for r in (v.reason, ts_reason) if r)
    v.em = _exact_match(task)
    return out


# ---------------------------------------------------------------- the API


def suite_instances(suite_dir: Path, db_id: str) -> list[Path]:
    """The test-suite databases of `db_id`: `suite_dir/database/<db_id>/*.sqlite` or `suite_dir/<db_id>/*.sqlite`."""
    for base in (Path(suite_dir) / "database" / db_id, Path(suite_dir) / db_id):
        found = sorted(base.glob("*.sqlite")) if base.is_dir() else []
        if found:
            return found
    return []


def _db_path(db_dir: Path, db_id: str) -> Path:
    path = Path(db_dir) / db_id / f"{db_id}.sqlite"
    if not path.is_file():
        raise KidsqlError(f"database for db_id {db_id!r} not found: looked for {path}; check --db-dir")
    return path


def _schemas_for(db_ids: set[str], paths: dict[str, Path], schemas: dict[str, Schema] | None) -> dict[str, Schema]:
    """Given schemas first (tables.json), else read from the SQLite file, which needs no extra input."""
    out = dict(schemas or {})
    missing = [d for d in sorted(db_ids) if d not in out]
    if missing:
        from kidsql.data.sqlite_schema import read_schema

        for db_id in missing:
            out[db_id] = read_schema(paths[db_id], db_id)
    return out


def evaluate(
    golds: list[Example],
    preds: list[str],
    db_dir: Path,
    *,
    suite_dir: Path | None = None,
    metrics: tuple[str, ...] | list[str] = METRICS,
    schemas: dict[str, Schema] | None = None,
    semantics: str = "spider",
    workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    use_cache: bool = True,
    show_progress: bool = True,
) -> EvalReport:
    """Judge `preds[i]` against `golds[i]`. Raises KidsqlError for bad input (counts, databases, options)."""
    start = time.perf_counter()
    metrics = tuple(m.strip().lower() for m in metrics if m.strip())
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise KidsqlError(f"unknown metric(s) {unknown or metrics}: use a comma list of {', '.join(METRICS)}")
    if semantics not in SEMANTICS:
        raise KidsqlError(f"unknown semantics {semantics!r}: use one of {', '.join(SEMANTICS)}")
    if len(preds) != len(golds):
        raise KidsqlError(f"{len(preds)} predictions for {len(golds)} gold examples: give one prediction per gold")
    db_ids = {g.db_id for g in golds}
    paths = {d: _db_path(db_dir, d) for d in sorted(db_ids)}
    notes: list[str] = []

    suites: dict[str, tuple[Path, ...]] = {d: () for d in db_ids}
    if "ts" in metrics:
        if suite_dir is None:
            notes.append("no suite dir given: TS is computed on the single database of each db_id, so TS = EX")
        fallback = []
        for d in db_ids:
            found = suite_instances(suite_dir, d) if suite_dir is not None else []
            if suite_dir is not None and not found:
                fallback.append(d)
            suites[d] = tuple(p.resolve() for p in found) or (paths[d].resolve(),)
        if fallback:
            notes.append(f"TS fell back to the single database for {len(fallback)} db_id(s) missing from "
                         f"{suite_dir}: {', '.join(sorted(fallback))}")

    want_em = "em" in metrics
    if want_em:
        try:
            import kidsql.sql.exact_match  # noqa: F401
        except ImportError:
            want_em = False
            notes.append("EM skipped: kidsql.sql.exact_match is not available")
    schema_map = _schemas_for(db_ids, paths, schemas) if want_em else dict(schemas or {})

    cache_root = None
    if use_cache:
        from kidsql.paths import cache_dir

        cache_root = cache_dir() / "gold_results"
    tasks = [
        _Task(i, g.sql, p or "", g.db_id, paths[g.db_id].resolve(), suites[g.db_id], schema_map.get(g.db_id),
              g.hardness, want_em, semantics, timeout_s, cache_root)
        for i, (g, p) in enumerate(zip(golds, preds))
    ]
    outcomes = _run_all(tasks, workers, show_progress)
    report = EvalReport(
        verdicts=[o.verdict for o in outcomes],
        metrics=metrics,
        semantics=semantics,
        notes=notes,
        gold_executed=sum(o.gold_executed for o in outcomes),
        gold_cache_hits=sum(o.gold_cache_hits for o in outcomes),
    )
    report.elapsed_s = time.perf_counter() - start
    return report


def _run_all(tasks: list[_Task], workers: int | None, show_progress: bool) -> list[_Outcome]:
    from tqdm import tqdm

    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    workers = min(workers, max(1, len(tasks)))
    bar = dict(total=len(tasks), desc="evaluate", unit="q", disable=not show_progress, leave=False)
    if workers == 1:
        return [judge(t) for t in tqdm(tasks, **bar)]
    chunk = max(1, min(32, len(tasks) // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(judge, tasks, chunksize=chunk), **bar))
