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
* Semantics: by default the official test-suite script's, with its default flags (`kidsql.sql.official`:
  DISTINCT removed, "value" -> 1, order iff the gold says "order by"; `keep_distinct` and `plug_value` are its
  two flags); `semantics="bird"` runs both queries as written and compares sets, as BIRD's evaluator does.
* Work runs in worker processes (`kidsql.sql.pool`), one task per example (gold + prediction on every
  instance, EM, hardness when asked), each with a hard wall-clock bound past which its worker is replaced. A
  worker keeps one sandboxed connection per database and the results of the deterministic queries it has run
  in memory (`kidsql.sql.memo`: a query run again on a read-only database gives the same rows, so identical gold
  and predicted queries run once per worker); nothing is shared between workers but the cache files (written
  atomically).
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kidsql.data.types import Example, Schema
from kidsql.errors import KidsqlError
from kidsql.files import hex_digest, write_atomic
from kidsql.sql import official, sandbox
from kidsql.sql.compare import SEMANTICS, CompareTimeout, results_match
from kidsql.sql.memo import ResultMemo

HARDNESS_LEVELS = ("easy", "medium", "hard", "extra")
METRICS = ("ex", "ts", "em")
VERDICTS = ("ok", "mismatch", "pred_error", "gold_error")
CACHE_VERSION = 1
DEFAULT_TIMEOUT_S = sandbox.DEFAULT_TIMEOUT_S
MAX_SQL_CHARS = 100_000  # longer gold or predicted SQL is judged without being parsed or run


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
        md = write_atomic(out_dir / "report.md", self.to_markdown())
        js = write_atomic(out_dir / "results.json", self.to_json())
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
    key = hex_digest(json.dumps(ident, ensure_ascii=False))
    return root / key[:2] / f"{key}.json"


def _cache_load(path: Path) -> sandbox.ExecResult | None:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        rows = None if data["rows"] is None else [tuple(_decode(v) for v in r) for r in data["rows"]]
        # The text's length stands in for the result's size, which the in-memory memo counts against its bound.
        return sandbox.ExecResult(data["ok"], rows, data["columns"], data["error"], 0.0, len(text))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or corrupt: recompute


def _cache_store(path: Path, res: sandbox.ExecResult) -> None:
    if not res.ok and res.error and res.error.startswith(("timeout", "memory", "cannot open", "database not found")):
        return
    rows = None if res.rows is None else [[_encode(v) for v in r] for r in res.rows]
    payload = {"ok": res.ok, "rows": rows, "columns": res.columns, "error": res.error}
    try:
        write_atomic(path, json.dumps(payload, ensure_ascii=False))  # a parallel worker never reads half a file
    except OSError:
        pass  # a read-only cache only costs speed


# ---------------------------------------------------------------- one example (runs in a worker)


@dataclass(frozen=True)
class _Context:
    """What every task of one evaluation shares; sent to each worker once, at its start."""

    db_paths: dict[str, Path]
    suites: dict[str, tuple[Path, ...]]  # TS instances; empty when TS is not asked for
    schemas: dict[str, Schema]
    want_em: bool
    want_hardness: bool
    semantics: str
    keep_distinct: bool
    plug_value: bool
    timeout_s: float
    cache_root: Path | None


@dataclass(frozen=True)
class _Task:
    index: int
    gold: str
    pred: str
    db_id: str
    hardness: str


@dataclass
class _Outcome:
    verdict: Verdict
    gold_executed: int = 0
    gold_cache_hits: int = 0


_OPEN_MAX = 32  # open connections per worker; the least recently used is closed past this
_open: dict[Path, sandbox.Database] = {}


def _database(path: Path, timeout_s: float) -> sandbox.Database:
    """This worker's connection to `path`, opened once and reused (opening costs more than most queries)."""
    db = _open.pop(path, None)
    if db is None or db.timeout_s != timeout_s:
        db = sandbox.Database(path, timeout_s=timeout_s)
    _open[path] = db  # most recent last
    while len(_open) > _OPEN_MAX:
        _open.pop(next(iter(_open))).close()
    return db


_memo = ResultMemo()  # this worker's results of gold and predicted queries (kidsql.sql.memo says when it may)


def _gold(ctx: _Context, gold_sql: str, db_path: Path, out: _Outcome) -> sandbox.ExecResult:
    key = (db_path, gold_sql, ctx.timeout_s)
    res = _memo.recall(key, sandbox.DEFAULT_MAX_ROWS)
    if res is not None:
        out.gold_cache_hits += 1
        return res
    res = _gold_uncached(ctx, gold_sql, db_path, out)
    _memo.remember(key, gold_sql, res)
    return res


def _gold_uncached(ctx: _Context, gold_sql: str, db_path: Path, out: _Outcome) -> sandbox.ExecResult:
    path = _cache_file(ctx.cache_root, db_path, gold_sql) if ctx.cache_root else None
    if path is not None:
        cached = _cache_load(path)
        if cached is not None:
            out.gold_cache_hits += 1
            return cached
    res = _database(db_path, ctx.timeout_s).run(gold_sql)
    out.gold_executed += 1
    if path is not None:
        _cache_store(path, res)
    return res


def _hardness(ctx: _Context, task: _Task) -> str:
    if task.hardness or not ctx.want_hardness:
        return task.hardness or "unknown"
    from kidsql.sql.hardness import hardness
    from kidsql.sql.spider_parse import per_schema

    def level() -> str:
        try:
            return hardness(task.gold, schema)
        except Exception:  # noqa: BLE001 - a gold the parser cannot read still gets judged by execution
            return "unknown"

    schema = ctx.schemas.get(task.db_id)
    # One parse per gold and schema in this worker: the level depends on nothing else.
    return level() if schema is None else per_schema(schema, ("hardness", task.gold), level)


def _exact_match(ctx: _Context, task: _Task) -> bool | None:
    schema = ctx.schemas.get(task.db_id)
    if not ctx.want_em or schema is None:
        return None
    from kidsql.sql.exact_match import exact_match

    try:
        # The official script parses the prediction with "value" replaced by "1" for EM as for EX.
        return bool(exact_match(task.gold, task.pred.replace("value", "1"), schema))
    except Exception:  # noqa: BLE001 - unparsable predictions are simply not an exact match
        return False


def _matches(ctx: _Context, gold: sandbox.ExecResult, pred: sandbox.ExecResult, ordered: bool) -> bool:
    deadline = time.monotonic() + ctx.timeout_s
    return results_match(gold.rows, pred.rows, order_matters=ordered, semantics=ctx.semantics, deadline=deadline)


def _run_pred(ctx: _Context, db_path: Path, sql: str, gold: sandbox.ExecResult) -> tuple[sandbox.ExecResult, str]:
    """The prediction's result, stopped early when it has more rows than the gold (bags of unequal size never
    match under the Spider rule, so the rest need not be read); the second value is then the mismatch reason."""
    cap = len(gold.rows or []) + 1 if ctx.semantics == "spider" else None
    key = (db_path, sql, ctx.timeout_s)
    pred = _memo.recall(key, sandbox.DEFAULT_MAX_ROWS if cap is None else min(cap, sandbox.DEFAULT_MAX_ROWS))
    if pred is None:
        pred = _database(db_path, ctx.timeout_s).run(sql, max_rows=cap)
        _memo.remember(key, sql, pred)
    if not pred.ok and cap is not None and pred.error == f"row cap {cap} exceeded":
        return pred, f"results differ: gold {cap - 1} rows, prediction more"
    return pred, ""


def _judge_one(ctx: _Context, task: _Task, prep: official.Prepared, gold: sandbox.ExecResult) -> tuple[bool, str]:
    """EX of one prepared prediction against the gold's result on the main database; (right, reason)."""
    pred, longer = _run_pred(ctx, ctx.db_paths[task.db_id], prep.pred, gold)
    if longer:
        return False, longer
    if not pred.ok:
        return False, pred.error or "error"
    try:
        if not _matches(ctx, gold, pred, prep.order_matters):
            return False, f"results differ: gold {len(gold.rows or [])} rows, prediction {len(pred.rows)} rows"
    except CompareTimeout as err:
        return False, f"{err} (bound {ctx.timeout_s:g} s): judged wrong"
    return True, ""


def _test_suite(ctx: _Context, task: _Task, prep: official.Prepared, out: _Outcome) -> tuple[bool, str]:
    """TS over every instance but the main database (whose EX verdict the caller already has)."""
    skipped = 0
    for inst in ctx.suites[task.db_id]:
        if inst == ctx.db_paths[task.db_id]:
            continue
        gold = _gold(ctx, prep.gold, inst, out)
        if not gold.ok:
            skipped += 1
            continue
        pred, longer = _run_pred(ctx, inst, prep.pred, gold)
        if longer:
            return False, f"TS: {longer} on {inst.name}"
        if not pred.ok:
            return False, f"TS: prediction fails on {inst.name}: {pred.error}"
        try:
            if not _matches(ctx, gold, pred, prep.order_matters):
                return False, f"TS: results differ on {inst.name}"
        except CompareTimeout as err:
            return False, f"TS: {err} on {inst.name}"
    return True, f"TS: gold fails on {skipped} instance(s), skipped" if skipped else ""


def _prepare(ctx: _Context, gold: str, pred: str) -> official.Prepared:
    """The queries as the chosen official evaluator runs them: the Spider script rewrites both (DISTINCT,
    spaced operators, "value"); BIRD's `evaluation.py` runs them as written and compares sets, so order and
    duplicates never matter there."""
    if ctx.semantics == "bird":
        return official.Prepared(gold, pred, order_matters=False)
    return official.prepare(gold, pred, keep_distinct=ctx.keep_distinct)


def judge(ctx: _Context, task: _Task) -> _Outcome:
    """Everything about one example; runs in a worker process."""
    # The texts stay out of the verdict here: the parent holds them and fills them in (less to send back).
    v = Verdict(task.index, task.db_id, _hardness(ctx, task), "ok")
    out = _Outcome(v)
    too_long = [name for name, sql in (("gold", task.gold), ("prediction", task.pred)) if len(sql) > MAX_SQL_CHARS]
    if "gold" in too_long:
        v.verdict, v.reason = "gold_error", f"gold longer than {MAX_SQL_CHARS} characters: not run"
        return out
    if too_long:
        v.verdict, v.reason, v.ex = "pred_error", f"prediction longer than {MAX_SQL_CHARS} characters: not run", False
        v.ts = False if ctx.suites[task.db_id] else None
        v.em = False if ctx.want_em else None
        return out
    try:
        gold_prep = _prepare(ctx, task.gold, task.gold)
    except ValueError as err:
        v.verdict, v.reason = "gold_error", f"gold: {err}"
        return out
    gold = _gold(ctx, gold_prep.gold, ctx.db_paths[task.db_id], out)
    if not gold.ok:
        v.verdict, v.reason = "gold_error", f"gold fails: {gold.error}"
        v.em = _exact_match(ctx, task)  # recorded (EM needs no execution) but, as EX, left out of the accuracies
        return out
    # The official script replaces "value" by "1" before plugging, so a `value` placeholder is a slot too.
    candidates = (official.plug_value_candidates(task.gold, task.pred.replace("value", "1")) if ctx.plug_value
                  else [task.pred])
    reasons: list[str] = []
    v.ex = False
    for candidate in candidates:
        try:
            prep = _prepare(ctx, task.gold, candidate)
        except ValueError as err:
            reasons.append(f"prediction: {err}")
            continue
        ex, reason = _judge_one(ctx, task, prep, gold)
        ts, ts_reason = _test_suite(ctx, task, prep, out) if ctx.suites[task.db_id] and ex else (ex, "")
        if ex:
            v.ex = True
            v.ts = ts if ctx.suites[task.db_id] else None
            reasons = [ts_reason] if ts_reason else []
            if ts or not ctx.plug_value:
                break
        elif not reasons:
            reasons.append(reason)
        if not ctx.plug_value:
            break
    if ctx.suites[task.db_id] and v.ts is None:
        v.ts = False
    if not v.ex:
        failed = reasons[0] if reasons else "error"
        v.verdict = "mismatch" if failed.startswith(("results differ", "comparison")) else "pred_error"
    v.reason = "; ".join(r for r in reasons if r)
    v.em = _exact_match(ctx, task)
    return out


def _clip(text: str, limit: int = 10_000) -> str:
    """Stored strings are bounded: results.json never holds a 50 MB prediction."""
    return text if len(text) <= limit else f"{text[:limit]}... [{len(text)} characters, cut]"


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
    keep_distinct: bool = False,
    plug_value: bool = False,
    hardness: bool | None = None,
    workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    use_cache: bool = True,
    show_progress: bool = True,
) -> EvalReport:
    """Judge `preds[i]` against `golds[i]`. Raises KidsqlError for bad input (counts, databases, options).

    `hardness`: classify each gold by Spider hardness (parsing it); default: only when EM is asked for, which
    parses anyway. Examples that carry a level keep it; the others are "unknown" without it.
    """
    start = time.perf_counter()
    metrics = tuple(m.strip().lower() for m in metrics if m.strip())
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise KidsqlError(f"unknown metric(s) {unknown or metrics}: use a comma list of {', '.join(METRICS)}")
    if semantics not in SEMANTICS:
        raise KidsqlError(f"unknown semantics {semantics!r}: use one of {', '.join(SEMANTICS)}")
    try:
        sandbox.check_limits(timeout_s)
    except ValueError as err:
        raise KidsqlError(f"--timeout: {err}") from None
    if workers is not None and workers < 1:
        raise KidsqlError(f"--workers must be at least 1, not {workers}")
    if not golds:
        raise KidsqlError("no gold examples to evaluate: the gold file is empty (or --limit selected none)")
    if len(preds) != len(golds):
        raise KidsqlError(f"{len(preds)} predictions for {len(golds)} gold examples: give one prediction per gold")
    db_ids = {g.db_id for g in golds}
    paths = {d: _db_path(db_dir, d).resolve() for d in sorted(db_ids)}
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
            suites[d] = tuple(p.resolve() for p in found) or (paths[d],)
        if fallback:
            notes.append(f"TS fell back to the single database for {len(fallback)} db_id(s) missing from "
                         f"{suite_dir}: {', '.join(sorted(fallback))}")

    want_em = "em" in metrics
    want_hardness = want_em if hardness is None else hardness
    schema_map = _schemas_for(db_ids, paths, schemas) if (want_em or want_hardness) else dict(schemas or {})

    cache_root = None
    if use_cache:
        from kidsql.paths import cache_dir

        cache_root = cache_dir() / "gold_results"
    ctx = _Context(paths, suites, schema_map, want_em, want_hardness, semantics, keep_distinct, plug_value,
                   timeout_s, cache_root)
    tasks = [_Task(i, g.sql or "", p or "", g.db_id, g.hardness) for i, (g, p) in enumerate(zip(golds, preds))]
    outcomes = _run_all(ctx, tasks, workers, show_progress)
    report = EvalReport(
        verdicts=[o.verdict for o in outcomes],
        metrics=metrics,
        semantics=semantics_label(semantics, keep_distinct, plug_value),
        notes=notes,
        gold_executed=sum(o.gold_executed for o in outcomes),
        gold_cache_hits=sum(o.gold_cache_hits for o in outcomes),
    )
    report.elapsed_s = time.perf_counter() - start
    return report


def semantics_label(semantics: str, keep_distinct: bool, plug_value: bool) -> str:
    """The rules that ran, in words, for the report."""
    if semantics == "bird":
        text = "bird (BIRD's evaluation.py: results equal as sets of rows)"
    else:
        text = ("spider (official test-suite evaluator, default flags: bags of rows, order iff the gold says "
                "'order by', columns up to permutation")
        text += ", DISTINCT kept (--keep-distinct)" if keep_distinct else ", DISTINCT removed from both queries"
        text += ")"
    if plug_value:
        text += "; gold values plugged into the prediction (--plug-value)"
    return text


def _task_budget(ctx: _Context, task: _Task) -> float:
    """Hard wall-clock bound of one task: every query it may run at its timeout, plus comparisons and slack."""
    queries = 2 * max(1, len(ctx.suites[task.db_id]))
    if ctx.plug_value:
        queries *= 4
    return ctx.timeout_s * (queries + 2) + 10.0


def _run_all(ctx: _Context, tasks: list[_Task], workers: int | None, show_progress: bool) -> list[_Outcome]:
    from tqdm import tqdm

    from kidsql.sql.pool import run_bounded

    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))

    def overrun(task: _Task, budget: float) -> _Outcome:
        return _failed(ctx, task, f"hard time bound: the worker ran past {budget:g} s and was replaced")

    def crash(task: _Task, reason: str) -> _Outcome:
        return _failed(ctx, task, f"evaluator worker failed: {reason}")

    results: list[_Outcome | None] = [None] * len(tasks)
    with tqdm(total=len(tasks), desc="evaluate", unit="q", disable=not show_progress, leave=False) as bar:
        for index, outcome in run_bounded(judge, ctx, tasks, workers=workers, budget_s=lambda t: _task_budget(ctx, t),
                                          on_overrun=overrun, on_crash=crash):
            outcome.verdict.gold, outcome.verdict.pred = _clip(tasks[index].gold), _clip(tasks[index].pred)
            results[index] = outcome
            bar.update(1)
    return [r for r in results if r is not None]


def _failed(ctx: _Context, task: _Task, reason: str) -> _Outcome:
    v = Verdict(task.index, task.db_id, task.hardness or "unknown", "pred_error", reason, ex=False,
                ts=False if ctx.suites[task.db_id] else None, em=False if ctx.want_em else None,
                gold=_clip(task.gold), pred=_clip(task.pred))
    return _Outcome(v)
