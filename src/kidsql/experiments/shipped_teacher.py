"""The demo's teacher, shipped with kidsql: trained once, so a new user distils at once, on any machine.

Why ship it: the teacher's 1,000 SFT steps are most of the demo's time on a 2-core CPU, and training it again on
another CPU gives another teacher (the runs part through the CPU's kernels; numbers in the README). A shipped
teacher makes the demo fast and its teacher the same everywhere; only the students train on the user's machine.
It is used only for the setup it was trained with (`card.json`'s "setup": the embedded benchmark preset, seed and
format version, the teacher spec and its whole training budget); any other setup, `--teacher_steps` with another
N, or `--shipped_teacher false` trains a teacher. When the embedded benchmark's format version changes the card
stops matching (the test suite says so) and `python scripts/build_teacher.py` rebuilds it.

Files (`kidsql/shipped/teacher/`): the model folder as the trainer saved it (safetensors weights, config,
tokenizer, prompt options), `card.json` (setup, training command, sha256 of the weights, scores on the first dev
examples) and `README.md` (the card for people).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kidsql.errors import KidsqlError
from kidsql.files import file_sha256

if TYPE_CHECKING:
    from kidsql.experiments.config import RunConfig

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "shipped" / "teacher"  # package data of kidsql
WEIGHTS = "model.safetensors"
CHECK_EXAMPLES = 64  # the card's scores on the first N dev examples: what the test suite checks (seconds)
BUILD_COMMAND = "python scripts/build_teacher.py"


def setup_of(cfg: RunConfig) -> dict[str, Any]:
    """What decides the teacher of a run: compared with the card's "setup" to decide whether the shipped one fits."""
    from kidsql.data.synth import FORMAT_VERSION
    from kidsql.experiments.config import teacher_budget

    return {"bench_size": cfg.bench_size, "bench_seed": cfg.bench_seed, "benchmark_version": FORMAT_VERSION,
            "teacher": cfg.teacher, "seed": cfg.seed, "budget": teacher_budget(cfg).options()}


def read_card(folder: Path = SHIPPED_DIR) -> dict[str, Any] | None:
    path = folder / "card.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def verified(folder: Path = SHIPPED_DIR) -> Path:
    """The shipped model folder, after checking its weights against the card's sha256."""
    card = read_card(folder)
    if card is None or not (folder / WEIGHTS).is_file():
        raise KidsqlError(f"{folder}: the shipped teacher is missing; reinstall kidsql or pass --shipped_teacher false")
    if file_sha256(folder / WEIGHTS) != card["sha256"]:
        raise KidsqlError(f"{folder / WEIGHTS}: checksum differs from card.json (a damaged or edited file); "
                          "reinstall kidsql, or pass --shipped_teacher false to train a teacher")
    return folder


def shipped_teacher_for(cfg: RunConfig, folder: Path = SHIPPED_DIR) -> Path | None:
    """The shipped teacher when `cfg` asks for exactly the teacher it is (and the embedded benchmark), else None."""
    from kidsql.experiments.config import RunConfig

    if not cfg.shipped_teacher or cfg.data or cfg.teacher_steps == 0:
        return None
    if cfg.run_overrides() != RunConfig().run_overrides():  # LoRA, --train_options, another split: not this teacher
        return None
    card = read_card(folder)
    if card is None or card.get("setup") != setup_of(cfg):
        return None
    print(f"teacher: the teacher shipped with kidsql ({folder}; {card['training_command']})")
    return verified(folder)


def build_shipped_teacher(folder: Path = SHIPPED_DIR, eval_limit: int = 200) -> dict[str, Any]:
    """Train the default teacher (the demo's setup; cached like any teacher), copy its model folder to `folder`,
    score it on the first `eval_limit` and `CHECK_EXAMPLES` dev examples and write card.json and README.md."""
    from kidsql.experiments import steps
    from kidsql.experiments.config import RunConfig
    from kidsql.experiments.report import environment
    from kidsql.files import write_atomic, write_json

    cfg = RunConfig(shipped_teacher=False)
    bench = steps.resolve_benchmark(cfg)
    trained = steps.resolve_teacher(bench, cfg)
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(trained, folder)
    scores = {}
    for n in sorted({eval_limit, CHECK_EXAMPLES}):
        preds = steps.predict(folder, bench, "dev", n, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.gen_batch_size)
        scores[str(n)] = steps.summary_metrics(steps.score(bench, "dev", preds, limit=n, workers=cfg.eval_workers))
    card = {"setup": setup_of(cfg), "sha256": file_sha256(folder / WEIGHTS), "training_command": BUILD_COMMAND,
            "trained_with": environment(), "dev_scores_first_n": scores}
    write_json(folder / "card.json", card)
    write_atomic(folder / "README.md", card_markdown(card))
    return card


def card_markdown(card: dict[str, Any]) -> str:
    s, env = card["setup"], card["trained_with"]
    lines = [f"first {n} dev examples: EX {m['ex']:.1f}, TS {m['ts']:.1f}, EM {m['em']:.1f}"
             for n, m in sorted(card["dev_scores_first_n"].items(), key=lambda kv: int(kv[0]))]
    b = s["budget"]
    return (
        "# The demo's teacher (shipped with kidsql)\n\n"
        f"`{s['teacher']}` (a 4-layer Llama, about 2.6 M parameters, float32 safetensors) trained from scratch with "
        f"SFT on the embedded benchmark (`--bench_size {s['bench_size']}`, seed {s['bench_seed']}, format version "
        f"{s['benchmark_version']}): {b['max_steps']} steps, batch {b['per_device_train_batch_size']}, lr {b['learning_rate']}, "
        f"{b['lr_scheduler_type']} schedule with {b['warmup_steps']} warm-up steps, prompts of at most "
        f"{b['max_prompt_tokens']} tokens, seed {s['seed']}.\n\n"
        f"Rebuild: `{card['training_command']}` (trains it, copies it here, scores it, writes this card). Built "
        f"with kidsql {env['kidsql_version']}, torch {env['torch_version']}, on {env['cpu_count']} CPUs; card "
        f"written {env['date']}. A teacher trained on another CPU differs (the runs part through the CPU's "
        "kernels): this file, not the command, is the demo's teacher.\n\n"
        f"sha256 of `{WEIGHTS}`: `{card['sha256']}`\n\n"
        "Scores (greedy decoding, by execution):\n\n" + "".join(f"* {x}\n" for x in lines) + "\n"
        "Used by `kidsql demo` and `kidsql bench` when their teacher setup is this one (the defaults); "
        "`--shipped_teacher false` or another teacher setup trains a teacher instead.\n"
    )
