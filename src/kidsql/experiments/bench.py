"""`kidsql bench`: every method (and KID ablations) over several seeds, same teacher, student and budget.

Layout of `--out`:
    runs/teacher/result.json                 the shared teacher's scores on every split
    runs/<variant>/seed<k>/train/            checkpoints (deleted once the run is done), final/ model, curve.jsonl
    runs/<variant>/seed<k>/preds_<split>.json
    runs/<variant>/seed<k>/result.json       written atomically when the run is complete
    report.md, report.json, score_vs_latency.png, learning_curves.png

Resumable: a run whose result.json exists is skipped; an interrupted training resumes from its last checkpoint
(`DistillConfig.resume_from_checkpoint="auto"`). The report is rebuilt from every result.json at the end, so it always covers
all finished runs. One teacher (trained with the first seed) serves every seed: seeds vary the students.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kidsql.config import config_field
from kidsql.errors import KidsqlError
from kidsql.experiments import steps
from kidsql.experiments.config import RunConfig, parse_methods, student_budget
from kidsql.experiments.steps import teacher_origin

DEFAULT_METHODS = "sft,fkd,rkd,seqkd,fdistill,imitkd,gkd-rkl,kid"
DEFAULT_SPLITS = "dev,dev_syn,dev_realistic,dev_dk"


@dataclass
class BenchConfig(RunConfig):
    out: str = config_field("output folder (runs/, report.md, report.json, plots)", "runs/bench")
    methods: str = config_field("comma list of methods", DEFAULT_METHODS)
    seeds: int = config_field("seeds per method (seed, seed+1, ...)", 3)
    splits: str | None = config_field("comma list of evaluation splits (default: the embedded benchmark's dev and "
                                      f"its three variants ({DEFAULT_SPLITS}); with --data, every split the folder "
                                      "holds besides the training ones)")
    curve_every: int = config_field("learning curve: dev EX every N steps (0: off)", 25)
    curve_size: int = config_field("learning curve: size of the fixed dev subset", 24)
    save_steps: int = config_field("checkpoint every N steps (what an interrupted run resumes from)", 50)
    isolate_runs: bool = config_field("train and score each run in a fresh process, so that its peak memory and "
                                      "step times are its own", True)
    alphas: str | None = config_field("KID ablation: comma list of alphas, one variant each")
    strategies: str | None = config_field("KID ablation: comma list of random, uniform, hard, easy")
    masking_only: bool = config_field("KID ablation: add masking-only (kid_rewrite none)", False)
    mle_weights: str | None = config_field("KID ablation: comma list of MLE weights")
    num_return_sequences: int = config_field("execution-guided evaluation: N candidates per question (beam search, "
                                             "or sampling with --do_sample); the first that executes is scored "
                                             "(1: greedy)", 1)
    do_sample: bool = config_field("execution-guided evaluation: sample the candidates instead of beam search", False)
    require_rows: bool = config_field("execution-guided evaluation: a candidate must also return rows", False)
    kid_options: str | None = config_field("KID ablation: comma list of field=value (a kid_* option of "
                                           "`kidsql distill`, e.g. mle_on=clean,kl_positions=rewritten, or "
                                           "divergence / temperature), one variant each")
    teacher_cache_topk: int = config_field("teacher-logit cache for the methods that read the teacher on gold data "
                                           "(FKD, RKD, ImitKD/GKD gold batches): the teacher's top-k log-probs at "
                                           "every SQL position, computed once and shared by every seed and method "
                                           "(0: off, live teacher forwards)", 0)


@dataclass(frozen=True)
class Variant:
    """One row of the bench: a named method plus overrides (KID ablations are kid with kid_* overrides)."""

    name: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchOutcome:
    """What a bench call did: the report's data, and how many runs were trained or skipped (resume)."""

    data: dict[str, Any]
    trained: int = 0
    skipped: int = 0


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise KidsqlError(f"--{option} {text!r}: expected a comma list of numbers, e.g. 0.1,0.2") from None


# Method-level options `--kid_options` also varies (e.g. divergence=fkl: KID's imperfect sequences with FKD's
# divergence, which tells the sequences' effect from the divergence's); every other key is a `kid_*` option.
_METHOD_FIELDS = ("divergence", "temperature")


def _options(text: str) -> list[tuple[str, Any, str]]:
    """`a=1,b=x` -> [("a", 1.0, "1"), ("b", "x", "x")]: (field, value, value as written); numbers as floats."""
    out = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise KidsqlError(f"--kid_options {text!r}: expected field=value items, e.g. mle_on=clean")
        try:
            parsed: Any = float(value)
        except ValueError:
            parsed = value.strip()
        out.append((key.strip().removeprefix("kid_"), parsed, value.strip()))
    return out


def variants(cfg: BenchConfig) -> list[Variant]:
    """The methods, then the ablation variants; a variant identical to an earlier one is dropped (e.g. alpha 0.2
    is plain KID). Every override is validated here, before any training."""
    from kidsql.distill.methods import get_method

    out = [Variant(m, m) for m in parse_methods(cfg.methods)]
    if cfg.alphas:
        out += [Variant(f"kid-alpha{a:g}", "kid", {"kid_alpha": a}) for a in _floats(cfg.alphas, "alphas")]
    if cfg.strategies:
        out += [Variant(f"kid-{s.strip()}", "kid", {"kid_strategy": s.strip()}) for s in cfg.strategies.split(",") if s.strip()]
    if cfg.masking_only:
        out.append(Variant("kid-masking-only", "kid", {"kid_rewrite": "none"}))
    if cfg.mle_weights:
        from kidsql.validate import check_value

        weights = _floats(cfg.mle_weights, "mle-weights")
        for w in weights:
            check_value("mle_weight", w, "--mle_weights")
        out += [Variant(f"kid-mle{w:g}", "kid", {"mle_weight": w}) for w in weights]
    if cfg.kid_options:
        out += [Variant(f"kid-{k.replace('_', '-')}-{raw}", "kid", {k if k in _METHOD_FIELDS else f"kid_{k}": v})
                for k, v, raw in _options(cfg.kid_options)]
    seen: list[Any] = []
    unique = []
    for v in out:
        resolved = get_method(v.method, **v.overrides)
        if resolved not in seen:
            seen.append(resolved)
            unique.append(v)
    return unique



def seeds_of(cfg: BenchConfig) -> list[int]:
    if cfg.seeds < 1:
        raise KidsqlError(f"--seeds {cfg.seeds}: give at least 1")
    return [cfg.seed + k for k in range(cfg.seeds)]


def splits_of(cfg: BenchConfig, bench: Path) -> list[str]:
    from kidsql.data.load import evaluation_splits, split_folder

    if cfg.splits:
        names = [s.strip() for s in cfg.splits.split(",") if s.strip()]
    else:
        names = evaluation_splits(bench, cfg.train_split) if cfg.data else DEFAULT_SPLITS.split(",")
    missing = [s for s in names if not (split_folder(bench, s) / f"{s}.json").is_file()]
    if not names or missing:
        have = ", ".join(evaluation_splits(bench, cfg.train_split)) or "none"
        raise KidsqlError(f"{bench}: split(s) {', '.join(missing) or '(none)'} not found (present: {have}); "
                          "fix --splits")
    return names


def run_bench(cfg: BenchConfig) -> BenchOutcome:
    """Train/evaluate every missing (variant, seed) run, then rebuild the report from all result.json files.
    The `--out` folder is locked meanwhile: a second bench into it is refused instead of sharing its runs."""
    from kidsql.run_folder import locked
    from kidsql.validate import writable_folder

    with locked(writable_folder(cfg.out, "--out")):
        return _run_bench(cfg)


def _run_bench(cfg: BenchConfig) -> BenchOutcome:
    from kidsql.models import load_tokenizer

    out = Path(cfg.out)
    cfg.check()
    _guided(cfg)  # bad decoding options fail before any training
    todo = [(v, s) for v in variants(cfg) for s in seeds_of(cfg)]  # every variant validated before any write
    check_same_setup(cfg)
    pending = [(v, s) for v, s in todo if not _result_path(out, v.name, s).is_file()]
    stages = steps.Stages(3 + len(pending) + (1 if cfg.student_warmup_steps else 0))
    stages("embedded benchmark" if not cfg.data else f"benchmark {cfg.data}")
    bench = steps.resolve_benchmark(cfg)
    splits = splits_of(cfg, bench)
    stages(f"teacher ({cfg.teacher}, sft) and its scores")
    teacher_dir = steps.resolve_teacher(bench, cfg)
    teacher_file = out / "runs" / "teacher" / "result.json"
    if not teacher_file.is_file():
        from kidsql.files import write_json

        write_json(teacher_file, {"variant": "teacher", "spec": cfg.teacher, "model_dir": str(teacher_dir),
                                  "eval_limit": cfg.eval_limit, "splits": {}})
    teacher = _complete_scores(cfg, bench, splits, teacher_file)
    student = steps.resolve_student(cfg.student, teacher_dir)
    if cfg.student_warmup_steps:
        from kidsql.experiments.warmup import warm_student

        stages(f"student warm-up ({cfg.student_warmup_steps} SFT steps, shared by every run)")
        student = warm_student(bench, student, student_budget(cfg), cfg.student_warmup_steps, seed=cfg.seed)

    outcome = BenchOutcome(data={})
    tokenizer = load_tokenizer(steps.run_tokenizer(bench, student, teacher_dir)) if cfg.curve_every > 0 else None
    for variant, seed in todo:
        if _result_path(out, variant.name, seed).is_file():
            outcome.skipped += 1
            continue
        stages(f"distil student ({variant.name}, seed {seed})")
        if cfg.isolate_runs:
            _isolated_run(cfg, bench, teacher_dir, student, splits, variant, seed)
        else:
            _one_run(cfg, bench, teacher_dir, student, splits, variant, seed, tokenizer)
        outcome.trained += 1

    stages("report and plots")
    results = [_complete_scores(cfg, bench, splits, _result_path(out, v.name, s)) for v, s in todo]
    outcome.data = write_report(cfg, bench, splits, results, teacher)
    return outcome


# Options that only choose which runs exist or how they are executed: a bench resumed with other values of these
# adds runs (another method, seed, ablation or split) or runs them otherwise, next to results that stay valid.
_SELECTION_FIELDS = frozenset({"out", "methods", "seeds", "seed", "splits", "alphas", "strategies", "masking_only",
                               "mle_weights", "kid_options", "eval_workers", "isolate_runs", "save_steps"})


def check_same_setup(cfg: BenchConfig) -> None:
    """Refuse to resume into a folder whose results were made under another setup (teacher, student, budget,
    benchmark, ...): the report would average runs that are not comparable. The setup is written on first use."""
    from kidsql.data.synth import FORMAT_VERSION
    from kidsql.files import write_json

    setup = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _SELECTION_FIELDS}
    setup["embedded_benchmark_version"] = FORMAT_VERSION if not cfg.data else None
    if not setup.get("teacher_cache_topk"):  # off: recorded as absent, so folders without the field still match
        setup.pop("teacher_cache_topk", None)
    path = Path(cfg.out) / "bench_setup.json"
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        # a field added since the folder was made counts as its default (the setup those runs had)
        defaults = dataclasses.asdict(BenchConfig())
        differs = sorted(k for k in set(before) | set(setup) if before.get(k, defaults.get(k)) != setup.get(k))
        if differs:
            raise KidsqlError(f"{path}: this folder holds bench runs made with other settings (differs in: "
                              f"{', '.join(differs)}); pass a new --out, or delete {cfg.out} to start over")
    else:
        write_json(path, setup)


def split_sizes(bench: Path, splits: list[str], limit: int | None) -> dict[str, int]:
    """How many examples each split's scores rest on (a 4-example split moves 25 points per example)."""

    return {s: len(steps.split_examples(bench, s, limit)[0]) for s in splits}


def _result_path(out: Path, name: str, seed: int) -> Path:
    return out / "runs" / name / f"seed{seed}" / "result.json"


def _complete_scores(cfg: BenchConfig, bench: Path, splits: list[str], result_file: Path) -> dict[str, Any]:
    """A result.json with scores for every split of this bench: splits it lacks (a new --splits) or scored with
    another --eval_limit are (re-)evaluated from the saved model, without retraining."""
    from kidsql.files import read_json, write_json

    result = read_json(result_file)
    if result.get("eval_limit") != cfg.eval_limit:
        result["splits"], result["eval_limit"] = {}, cfg.eval_limit
    # a split without per-example verdicts (which the paired statistics need) is scored again from the model
    missing = [s for s in splits if "ex_per_example" not in result["splits"].get(s, {})]
    if missing:
        result["splits"].update(_evaluate_model(cfg, bench, Path(result["model_dir"]), missing, result_file.parent))
        write_json(result_file, result)
    return result


def _evaluate_model(cfg: BenchConfig, bench: Path, model_dir: Path, splits: list[str], run_dir: Path) -> dict:
    """{split: {"ex", "ts", "em", "scored", "predictions"}}; predictions saved as preds_<split>.json."""
    from kidsql.predict import load_for_inference
    from kidsql.files import write_json

    model, tokenizer = load_for_inference(model_dir)
    guided = _guided(cfg)
    metrics = {}
    for split in splits:
        preds = steps.predict(model_dir, bench, split, cfg.eval_limit, max_new_tokens=cfg.max_new_tokens,
                          batch_size=cfg.gen_batch_size, use_evidence=cfg.use_evidence,
                          model=model, tokenizer=tokenizer, guided=guided)
        pred_file = write_json(run_dir / f"preds_{split}.json", preds)
        report = steps.score(bench, split, preds, limit=cfg.eval_limit, workers=cfg.eval_workers,
                         use_evidence=cfg.use_evidence)
        metrics[split] = {**steps.summary_metrics(report), "predictions": str(pred_file),
                          "ex_per_example": steps.ex_per_example(report)}
    return metrics


def _guided(cfg: BenchConfig) -> Any:
    """The bench's decoding as a `kidsql.guided.GuidedDecoding` (one candidate: greedy)."""
    from kidsql.guided import GuidedDecoding

    return GuidedDecoding(cfg.num_return_sequences, do_sample=cfg.do_sample, require_rows=cfg.require_rows)


def _isolated_run(cfg: BenchConfig, bench: Path, teacher_dir: Path, student: str, splits: list[str], variant: Variant,
                  seed: int) -> None:
    """`_one_run` in a fresh (spawned) process. In one long process the resident memory only grows (the
    allocator keeps what earlier runs freed), so a run's peak RSS would be the high-water mark of every run before
    it, whatever the method; in its own process it is the run's own."""
    import multiprocessing
    import os

    proc = multiprocessing.get_context("spawn").Process(
        target=_one_run_child, args=(cfg, bench, teacher_dir, student, splits, variant, seed, os.getpid()))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise KidsqlError(f"{_result_path(Path(cfg.out), variant.name, seed).parent}: the run of {variant.name} "
                          f"(seed {seed}) failed (exit code {proc.exitcode}, its error is above); fix it and run the "
                          "same command again to resume")


def _one_run_child(cfg: BenchConfig, bench: Path, teacher_dir: Path, student: str, splits: list[str],
                   variant: Variant, seed: int, parent_pid: int) -> None:
    """The spawned run: dies with the bench (`kidsql.parent_death`); its bad input is one line, as in the CLI."""
    import sys

    from kidsql.models import load_tokenizer
    from kidsql.parent_death import die_with_parent

    die_with_parent(parent_pid)
    try:
        tokenizer = load_tokenizer(steps.run_tokenizer(bench, student, teacher_dir)) if cfg.curve_every > 0 else None
        _one_run(cfg, bench, teacher_dir, student, splits, variant, seed, tokenizer)
    except KidsqlError as err:
        print(f"kidsql bench: error: {err}", file=sys.stderr)
        sys.exit(2)


def _one_run(cfg: BenchConfig, bench: Path, teacher_dir: Path, student: str, splits: list[str], variant: Variant,
             seed: int, tokenizer: Any) -> None:
    from kidsql.experiments.curves import dev_curve_callback, read_curve
    from kidsql.files import read_json, write_json

    run_dir = _result_path(Path(cfg.out), variant.name, seed).parent
    train_dir = run_dir / "train"
    curve_file = train_dir / "curve.jsonl"
    callbacks = []
    if cfg.curve_every > 0:
        callbacks.append(dev_curve_callback(bench, tokenizer, curve_file, every=cfg.curve_every, size=cfg.curve_size,
                                              split=splits[0],
                                              max_prompt_tokens=cfg.max_prompt_tokens,
                                              max_new_tokens=cfg.max_new_tokens, batch_size=cfg.gen_batch_size,
                                              num_sample_values=cfg.num_sample_values,
                                              matched_values=cfg.matched_values, use_evidence=cfg.use_evidence))
    res = steps.train_student(bench, variant.method, student, teacher_dir, train_dir,
                          student_budget(cfg, save_steps=cfg.save_steps), seed=seed,
                          overrides={**cfg.run_overrides(), **variant.overrides,
                                     **({"teacher_cache_topk": cfg.teacher_cache_topk} if cfg.teacher_cache_topk else {})},
                          callbacks=callbacks, resume="auto")
    run_config = read_json(train_dir / "run_config.json")
    metrics = _evaluate_model(cfg, bench, res.model_dir, splits, run_dir)
    write_json(run_dir / "result.json", {
        "variant": variant.name, "method": variant.method, "overrides": variant.overrides, "seed": seed,
        "eval_limit": cfg.eval_limit, "splits": metrics, "steps": res.steps, "mean_step_time_s": res.mean_step_time_s,
        "tokens_per_s": res.tokens_per_s, "peak_memory_mb": res.peak_memory_mb,
        "peak_memory_kind": res.peak_memory_kind, "final_loss": res.final_loss, "model_dir": str(res.model_dir),
        "curve": read_curve(curve_file), "resolved": run_config.get("resolved", {}),
    })
    for ckpt in train_dir.glob("checkpoint-*"):  # the run is complete: its resume points are dead weight
        shutil.rmtree(ckpt, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- report


def _prompts_line(results: list[dict[str, Any]]) -> str:
    """What the runs' token budgets did to the training prompts (shortened, still over, a lowered budget)."""
    resolved = next((r["resolved"] for r in results if r.get("resolved", {}).get("prompts")), None)
    if resolved is None:
        return ""
    p = resolved["prompts"]
    text = (f"Training prompts shortened to the {p['max_prompt_tokens']}-token budget: {p['shortened']} of "
            f"{p['total']}, keeping every table and column the gold SQL uses"
            + (f"; {p['over_budget']} still over it, cut from the start" if p["over_budget"] else "") + ".")
    lowered = resolved.get("max_prompt_tokens")
    if lowered:
        text += (f" The prompt budget was lowered from {lowered['asked']} to {lowered['used']} to fit the models' "
                 f"{lowered['max_positions']} positions.")
    if resolved.get("kid_mask_token"):
        text += f" KID's mask token: {resolved['kid_mask_token']}."
    return text + "\n\n"



def aggregate(results: list[dict[str, Any]], splits: list[str]) -> dict[str, dict[str, Any]]:
    """Per variant, over seeds: EX/TS per split, the average score, latency relative to SFT, peak memory.

    Latency of a seed = its mean step time / the mean of SFT's mean step times (None without an SFT run).
    """
    from kidsql.experiments.report import average_score, mean_std

    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_name.setdefault(r["variant"], []).append(r)
    sft_times = [r["mean_step_time_s"] for r in by_name.get("sft", []) if r.get("mean_step_time_s")]
    sft_time = mean_std(sft_times)[0] if sft_times else None
    rows: dict[str, dict[str, Any]] = {}
    for name, runs in by_name.items():
        row: dict[str, Any] = {"method": runs[0]["method"], "overrides": runs[0].get("overrides", {}),
                               "seeds": [r["seed"] for r in runs], "splits": {}}
        for split in splits:
            row["splits"][split] = {m: [r["splits"][split][m] for r in runs] for m in ("ex", "ts", "em")}
        row["score"] = [average_score(r["splits"], splits) for r in runs]
        times = [r.get("mean_step_time_s") for r in runs]
        row["mean_step_time_s"] = times
        row["latency"] = [t / sft_time for t in times if t and sft_time] if sft_time else []
        row["peak_memory_mb"] = [r["peak_memory_mb"] for r in runs if r.get("peak_memory_mb") is not None]
        row["curves"] = [r.get("curve") or [] for r in runs]
        rows[name] = row
    return rows


GOLD_BASELINES = ("sft", "fkd", "rkd", "seqkd")


def goal_checks(summary: dict[str, dict[str, Any]], focus: str = "kid", gkd: str = "gkd-rkl") -> list[dict[str, Any]]:
    """KID's targets for `focus`, each computed from the seed means in `summary` (name -> {"score",
    "latency"}): at least 2 points of average score above every gold-data baseline, within 1 point of GKD, at
    most 1.15x RKD's latency and below GKD's. A check whose runs are missing says so (met None)."""
    def get(name: str, key: str) -> float | None:
        return summary.get(name, {}).get(key)

    checks = []
    k_score, k_lat = get(focus, "score"), get(focus, "latency")
    gold = {b: get(b, "score") for b in GOLD_BASELINES if get(b, "score") is not None}
    if k_score is not None and gold:
        best = max(gold, key=gold.get)
        margin = k_score - gold[best]
        checks.append({"goal": f"{focus} >= every gold baseline + 2 (avg score)", "value": margin,
                       "detail": f"{focus} - best gold baseline ({best}) = {margin:+.1f}", "met": margin >= 2})
    else:
        checks.append({"goal": f"{focus} >= every gold baseline + 2 (avg score)", "value": None,
                       "detail": "runs missing", "met": None})
    g_score = get(gkd, "score")
    diff = k_score - g_score if k_score is not None and g_score is not None else None
    checks.append({"goal": f"{focus} within 1 point of {gkd} (or above)", "value": diff,
                   "detail": f"{focus} - {gkd} = {diff:+.1f}" if diff is not None else "runs missing",
                   "met": None if diff is None else diff >= -1})
    for other, limit in (("rkd", 1.15), (gkd, 1.0)):
        o_lat = get(other, "latency")
        ratio = k_lat / o_lat if k_lat and o_lat else None
        word = f"<= {limit:.2f}x {other} latency" if other == "rkd" else f"below {other} latency"
        checks.append({"goal": f"{focus} {word}", "value": ratio,
                       "detail": f"{focus}/{other} step time = {ratio:.2f}x" if ratio else "runs missing",
                       "met": None if ratio is None else (ratio <= limit if other == "rkd" else ratio < limit)})
    return checks


PAIRED_SPLIT = "dev"
PAIRED_AGAINST = ("kid", "sft")


def paired_differences(results: list[dict[str, Any]], names: list[str], split: str = PAIRED_SPLIT,
                       against: tuple[str, ...] = PAIRED_AGAINST) -> dict[str, dict[str, Any]]:
    """{variant: {"vs_kid": PairedDifference dict, "vs_sft": ...}}: dev EX of the variant minus the reference's,
    paired over the seeds both ran and the same examples, with its 95 % bootstrap interval (`kidsql.stats`)."""
    from kidsql.stats import paired_bootstrap

    per_run = {(r["variant"], r["seed"]): r["splits"].get(split, {}).get("ex_per_example") for r in results}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        for ref in against:
            if name == ref:
                continue
            seeds = sorted(s for (v, s), x in per_run.items() if v == name and x is not None
                           and per_run.get((ref, s)) is not None)
            if not seeds:
                continue
            as_float = lambda xs: [float("nan") if x is None else float(x) for x in xs]  # noqa: E731
            a = [as_float(per_run[(name, s)]) for s in seeds]
            b = [as_float(per_run[(ref, s)]) for s in seeds]
            out.setdefault(name, {})[f"vs_{ref}"] = paired_bootstrap(a, b).to_dict()
    return out


def paired_markdown(paired: dict[str, dict[str, Any]], split: str = PAIRED_SPLIT) -> str:
    """The paired table of report.md ("" when nothing could be paired)."""
    from kidsql.experiments.report import markdown_table

    if not paired:
        return ""
    refs = [f"vs_{r}" for r in PAIRED_AGAINST]

    def cell(p: dict[str, Any] | None) -> str:
        if p is None:
            return "-"
        word = {"better": "better", "worse": "worse", "tie": "tie"}[p["verdict"]]
        return f"{p['diff']:+.1f} [{p['ci95'][0]:+.1f}, {p['ci95'][1]:+.1f}] {word}"

    rows = [[name] + [cell(d.get(r)) for r in refs] for name, d in paired.items()]
    n = next(iter(next(iter(paired.values())).values()))
    return (markdown_table(["method", *[f"{split} EX {r.replace('_', ' ')}" for r in refs]], rows) + "\n"
            f"Paired differences of {split} EX (method minus KID, minus SFT) over the same {n['n_examples']} "
            "examples and the seeds both ran, with the 95 % bootstrap interval (seeds and examples resampled, "
            "`kidsql.stats`); \"tie\": the interval holds 0, so the two are not told apart.\n\n")


def write_report(cfg: BenchConfig, bench: Path, splits: list[str], results: list[dict[str, Any]],
                 teacher: dict[str, Any]) -> dict[str, Any]:
    """report.md, report.json and the two PNG plots in cfg.out; returns report.json's data."""
    from kidsql.experiments.report import environment
    from kidsql.files import write_atomic, write_json
    from kidsql.experiments.report import (average_score, fmt, fmt_mean_std, markdown_table, mean_std, plot_learning_curves,
                               plot_score_vs_latency)

    out = Path(cfg.out)
    rows = aggregate(results, splits)
    headers = ["method"] + [f"{s} {m.upper()}" for s in splits for m in ("ex", "ts")]
    headers += ["avg score", "latency vs SFT", "peak MB"]
    table = [["teacher " + cfg.teacher] + [fmt(teacher["splits"][s][m]) for s in splits for m in ("ex", "ts")]
             + [fmt(average_score(teacher["splits"], splits)), "-", "-"]]
    points = []
    for name, row in rows.items():
        cells = [fmt_mean_std(row["splits"][s][m]) for s in splits for m in ("ex", "ts")]
        table.append([name] + cells + [fmt_mean_std(row["score"]), fmt_mean_std(row["latency"], 2),
                                       fmt_mean_std(row["peak_memory_mb"], 0)])
        score, score_std = mean_std(row["score"])
        lat, lat_std = mean_std(row["latency"]) if row["latency"] else (None, 0.0)
        row["summary"] = {"score": score, "score_std": score_std, "latency": lat, "latency_std": lat_std}
        points.append({"name": name, "score": score, "score_std": score_std, "latency": lat, "latency_std": lat_std})
    md_table = markdown_table(headers, table)
    paired = paired_differences(results, list(rows))
    paired_md = paired_markdown(paired)
    goals = goal_checks({n: r["summary"] for n, r in rows.items()})
    goal_md = markdown_table(["goal", "measured", "met"],
                             [[g["goal"], g["detail"], {True: "yes", False: "no", None: "-"}[g["met"]]] for g in goals])
    plots = {
        "score_vs_latency": str(plot_score_vs_latency(points, out / "score_vs_latency.png")),
        "learning_curves": str(plot_learning_curves({n: r["curves"] for n, r in rows.items()}, out / "learning_curves.png")),
    }
    env = environment()
    data = {"kind": "bench", "environment": env, "config": dataclasses.asdict(cfg), "benchmark": str(bench),
            "splits": splits, "split_sizes": split_sizes(bench, splits, cfg.eval_limit), "teacher": teacher,
            "variants": rows, "paired": paired, "goals": goals, "runs": results, "plots": plots, "markdown_table": md_table}
    write_json(out / "report.json", data)
    n_seeds = len(seeds_of(cfg))
    text = (
        "# kidsql bench\n\n"
        f"Benchmark `{bench}`; teacher `{cfg.teacher}` ({teacher_origin(cfg)}); student `{cfg.student}`"
        + (f" warmed up by {cfg.student_warmup_steps} shared SFT steps" if cfg.student_warmup_steps else "")
        + f", {cfg.student_steps} steps, batch {cfg.batch_size}, lr {cfg.learning_rate}; {n_seeds} seed(s) "
        f"from {cfg.seed}" + (f"; first {cfg.eval_limit} examples per split" if cfg.eval_limit else "")
        + (f"; SQL by execution-guided decoding ({_guided(cfg).describe()})" if _guided(cfg).guides else "") + ".\n\n"
        + md_table + "\n"
        "Examples scored per split: " + ", ".join(f"{k} {v}" for k, v in data["split_sizes"].items()) + ".\n\n"
        + _prompts_line(results)
        + paired_md
        + goal_md + "\n"
        "Goals are checked on the seed means; the paired differences above say which margins are differences.\n\n"
        "Cells: mean ± sample std over seeds. avg score: plain mean of the EX and TS numbers over the "
        f"{len(splits)} splits (the paper's score). latency: mean optimiser step time relative to SFT's. "
        "peak MB: peak memory of each run (CUDA max allocated, or the process's peak RSS reset before the run).\n\n"
        "![score against latency](score_vs_latency.png)\n\n![learning curves](learning_curves.png)\n\n"
        f"`{env['command']}` — kidsql {env['kidsql_version']}, torch {env['torch_version']}, "
        f"{env['cpu_count']} CPUs, {env['date']}.\n"
    )
    write_atomic(out / "report.md", text)
    return data
