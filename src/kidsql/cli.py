"""The `kidsql` command line. Each sub-command lives in `kidsql.commands.<name>` with `add_arguments` and `run`.

Only the chosen command's module is imported (`kidsql evaluate` and `kidsql data` never load torch or
transformers, which the training commands import at module level), so start-up stays well under a second.
A `KidsqlError` is printed as one line and exits 2: bad input never shows a traceback.
`accelerate launch --cpu --num_processes N -m kidsql.cli train|distill ...` starts one process; it re-runs itself
as N (`kidsql.distributed`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kidsql.errors import KidsqlError

COMMANDS: dict[str, str] = {
    "data": "Inspect or generate benchmarks (show, synth).",
    "evaluate": "Score predicted SQL against gold by execution (EX, TS) and exact-set match (EM).",
    "train": "Fine-tune a teacher (SFT).",
    "distill": "Distil a student from a teacher with KID or a baseline.",
    "predict": "Generate SQL for a benchmark split with a trained model.",
    "export": "Write a trained LoRA model as one standalone model folder (--merge-lora).",
    "ask": "Ask a trained model questions about your own SQLite database.",
    "demo": "The main job: teacher, SFT/RKD/KID students, evaluation, on the embedded benchmark.",
    "bench": "Every method over several seeds: report.md, report.json and plots.",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser for `command` (its module imported); the other commands are listed by name only."""
    parser = argparse.ArgumentParser(prog="kidsql", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(f"kidsql.commands.{name}")
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def _command(argv: list[str]) -> str | None:
    """The sub-command named on the command line: the first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    try:
        from kidsql.distributed import cpu_processes_requested, relaunch

        processes = cpu_processes_requested()  # > 1: `accelerate launch --cpu --num_processes N` started only us
        if processes > 1:
            if args.command not in ("train", "distill"):
                raise KidsqlError(f"kidsql {args.command} runs in one process; start it without accelerate launch")
            return relaunch(processes, list(sys.argv[1:] if argv is None else argv))
        return int(args._run(args) or 0)
    except KidsqlError as err:
        print(f"kidsql {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
