"""kidsql's GKD (and KID) against TRL's `GKDTrainer` on the same stand-in pair, prompts, batch and settings.

    pip install trl            # TRL is needed by this benchmark only (not a kidsql dependency)
    python benchmarks/trl_gkd.py [--steps 3] [--vocab 32000] [--examples 16] [--prompt-tokens 640]

Pair: Qwen2 stand-ins from `benchmarks/standin_pair.py` (random float32 weights; teacher 4 layers x 256, student
2 x 128; a byte-level BPE tokenizer of `--vocab` entries trained on the data's prompts and SQL). Data: the first
`--examples` spider-de dev questions (`../shared/data/spider-de`), prompts built by kidsql with a `--prompt-tokens`
budget; both trainers get the very same token ids (kidsql's features, collated by kidsql's collator, with the
left-padded prompts TRL generates from), batch 4, beta 0.5, temperature 1, fp32, sampling up to `--new-tokens`.

Runs, each in a fresh process (its own peak memory), in this order: TRL lambda 0 (gold batches only) and lambda 1
(every batch generated), kidsql GKD lambda 0 and 1, kidsql KID. Steps with and without generation are measured
apart by running lambda 1 and lambda 0: a lambda 0.5 run is a mix of exactly those two kinds of step. kidsql's GKD
runs with `--mle_weight 0` here because TRL's GKD loss has no MLE term; KID keeps its defaults except the mask
token (`eos`: the Qwen-style tokenizer has no BOS). Reported per run: the median step time (CPU seconds of the
process, robust to other jobs on a shared machine, and wall seconds), the peak RSS during training and the RSS
when training starts (models loaded), and, in one extra process, both trainers' loss on the same fixed batch
(lambda 0, untouched weights): they must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RUNS = ["trl-l0", "trl-l1", "kidsql-gkd-l0", "kidsql-gkd-l1", "kidsql-kid"]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _kidsql_config(args: argparse.Namespace, pair: Path, work: Path, run: str) -> Any:
    from kidsql.distill.config import load_config

    method = "kid" if run.endswith("kid") else "gkd"
    extra: dict[str, Any] = {"kid_mask_token": "eos"} if method == "kid" else {
        "student_fraction": 1.0 if run.endswith("l1") else 0.0, "mle_weight": 0.0, "beta": 0.5}
    return load_config(
        None, method=method, teacher=str(pair / "teacher"), student=str(pair / "student"), data=args.data, split="dev",
        limit=args.examples, output_dir=str(work / run), max_steps=args.warmup + args.steps,
        per_device_train_batch_size=4, learning_rate=1e-4, logging_steps=1, save_steps=10**6, save_final=False,
        bf16=False, train_sampling_strategy="sequential", disable_tqdm=True, max_prompt_tokens=args.prompt_tokens, gen_max_new_tokens=args.new_tokens,
        temperature=1.0, cache_dir=str(work / "cache"), **extra)


def _trl_trainer(args: argparse.Namespace, pair: Path, work: Path, run: str) -> Any:
    """TRL's GKDTrainer on kidsql's features (same ids), with the prompts TRL generates from."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    from kidsql.distill.batches import SqlCollator, encode_examples
    from kidsql.distill.sequences import split_prompts
    from kidsql.distill.trainer import training_prompts

    tok = AutoTokenizer.from_pretrained(pair / "student")
    config = _kidsql_config(args, pair, work, "kidsql-gkd-l0")
    prompts, sqls = training_prompts(config, tok)
    features = encode_examples(tok, prompts, sqls, max_prompt_tokens=args.prompt_tokens)
    collate = SqlCollator(tok.pad_token_id)

    def collator(rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate(rows)
        batch["prompts"], batch["prompt_attention_mask"] = split_prompts(
            batch["input_ids"], batch["attention_mask"], batch["sql_mask"], tok.pad_token_id)
        return batch

    targs = GKDConfig(
        output_dir=str(work / run), per_device_train_batch_size=4, max_steps=args.warmup + args.steps,
        learning_rate=1e-4, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, bf16=False,
        lmbda=1.0 if run.endswith("l1") else 0.0, beta=0.5, temperature=1.0, max_new_tokens=args.new_tokens,
        train_sampling_strategy="sequential", dataloader_num_workers=0, disable_tqdm=True, seed=0)
    return GKDTrainer(model=AutoModelForCausalLM.from_pretrained(pair / "student"),
                      teacher_model=AutoModelForCausalLM.from_pretrained(pair / "teacher"), args=targs,
                      data_collator=collator, train_dataset=Dataset.from_list(features), processing_class=tok)


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One run (`--worker RUN`) in this process; prints its numbers as JSON."""
    import torch
    from transformers import TrainerCallback
    from transformers.utils import logging as hf_logging

    from kidsql.memory import peak_memory, reset_peak_memory

    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    pair, work, run = Path(args.pair), Path(args.work), args.worker

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.cpu: list[float] = []
            self.wall: list[float] = []

        def on_step_begin(self, *a: Any, **k: Any) -> None:
            self._c, self._w = time.process_time(), time.perf_counter()

        def on_step_end(self, *a: Any, **k: Any) -> None:
            self.cpu.append(time.process_time() - self._c)
            self.wall.append(time.perf_counter() - self._w)

    if run == "loss":
        from kidsql.distill.trainer import build_trainer

        kid = build_trainer(_kidsql_config(args, pair, work, "kidsql-gkd-l0"))
        trl = _trl_trainer(args, pair, work, "trl-l0")
        batch = trl.data_collator([trl.train_dataset[i] for i in range(4)])
        with torch.no_grad():
            ours = float(kid.compute_loss(kid.model, dict(batch)))
            theirs = float(trl.compute_loss(trl.model, dict(batch)))
        tokens = int(batch["attention_mask"].sum()) / 4
        return {"kidsql": ours, "trl": theirs, "mean_tokens": tokens,
                "sql_tokens": int(batch["sql_mask"].sum()) / 4, "vocab": kid.vocab_size}
    if run.startswith("trl"):
        trainer = _trl_trainer(args, pair, work, run)
    else:
        from kidsql.distill.trainer import build_trainer

        trainer = build_trainer(_kidsql_config(args, pair, work, run))
    clock = Clock()
    trainer.add_callback(clock)
    start = _rss_mb()
    reset_peak_memory()
    trainer.train()
    peak, kind = peak_memory()
    return {"cpu": clock.cpu[args.warmup:], "wall": clock.wall[args.warmup:], "start_mb": start, "peak_mb": peak,
            "peak_kind": kind}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="measured steps per run")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--prompt-tokens", type=int, default=640)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=None, help="Spider-layout folder (default: ../shared/data/spider-de)")
    parser.add_argument("--out", default=str(HERE / "results" / "trl_gkd.md"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--pair", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data is None:
        from kidsql.paths import shared_data_dir

        args.data = str(shared_data_dir() / "spider-de")
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return
    try:
        import trl  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/trl_gkd.py needs TRL: pip install trl (only this benchmark uses it)")

    sys.path.insert(0, str(HERE))
    from standin_pair import build_pair

    from kidsql.data.load import load_benchmark
    from kidsql.files import write_atomic

    work = Path(tempfile.mkdtemp(prefix="kidsql-trl-gkd-"))
    bench = load_benchmark(Path(args.data), "dev")
    texts = [e.question for e in bench.examples] + [e.sql for e in bench.examples]
    texts += [json.dumps(s.__dict__, default=str) for s in bench.schemas.values()]
    build_pair(work / "pair", texts, arch="qwen2", vocab=args.vocab)
    results: dict[str, Any] = {}
    for run in ["loss", *RUNS]:
        cmd = [sys.executable, __file__, "--worker", run, "--pair", str(work / "pair"), "--work", str(work),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--examples", str(args.examples),
               "--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens),
               "--threads", str(args.threads), "--data", args.data]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if done.returncode != 0 or line is None:
            sys.exit(f"run {run} failed:\n{done.stderr[-4000:]}")
        results[run] = json.loads(line[len("RESULT "):])
        print(run, results[run], flush=True)

    def med(run: str, key: str) -> float:
        return statistics.median(results[run][key])

    loss = results["loss"]
    rows = [("TRL GKD, gold step (lambda 0)", "trl-l0"), ("TRL GKD, generation step (lambda 1)", "trl-l1"),
            ("kidsql GKD, gold step (lambda 0)", "kidsql-gkd-l0"), ("kidsql GKD, generation step (lambda 1)", "kidsql-gkd-l1"),
            ("kidsql KID (defaults, mask token eos)", "kidsql-kid")]
    peer = {"trl-l0": "trl-l0", "trl-l1": "trl-l1", "kidsql-gkd-l0": "trl-l0", "kidsql-gkd-l1": "trl-l1",
            "kidsql-kid": "trl-l0"}
    lines = [
        "# kidsql vs TRL GKDTrainer (Qwen2 stand-ins)",
        "",
        f"`python benchmarks/trl_gkd.py --steps {args.steps} --vocab {args.vocab} --examples {args.examples} "
        f"--prompt-tokens {args.prompt_tokens} --new-tokens {args.new_tokens} --threads {args.threads}` - "
        f"vocabulary {loss['vocab']}, {loss['mean_tokens']:.0f} tokens per sequence on average "
        f"({loss['sql_tokens']:.0f} of them SQL), batch 4, beta 0.5, fp32, {args.threads} torch threads; "
        f"{platform.machine()} CPU, load average {os.getloadavg()[0]:.1f} at the end (the machine was shared "
        "with other jobs: CPU seconds per step are the robust measure, wall seconds are for reference).",
        "",
        f"Loss on the same fixed batch (lambda 0, initial weights): kidsql {loss['kidsql']:.6f}, TRL {loss['trl']:.6f} "
        f"(relative difference {abs(loss['kidsql'] - loss['trl']) / abs(loss['trl']):.1e}).",
        "",
        "| run | CPU s / step | wall s / step | peak RSS in training, MB | RSS at start, MB | step vs its TRL peer | "
        "peak memory vs its TRL peer | training memory (peak - start) vs peer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, run in rows:
        r, p = results[run], results[peer[run]]
        lines.append(
            f"| {label} | {med(run, 'cpu'):.2f} | {med(run, 'wall'):.2f} | {r['peak_mb']:.0f} | {r['start_mb']:.0f} | "
            f"{med(run, 'cpu') / med(peer[run], 'cpu'):.3f}x | {r['peak_mb'] / p['peak_mb']:.3f}x | "
            f"{(r['peak_mb'] - r['start_mb']) / max(p['peak_mb'] - p['start_mb'], 1e-9):.3f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_atomic(Path(args.out), text)


if __name__ == "__main__":
    main()
