"""What sharing a database's schema prefix across a batch would save: forward+backward of one tiny:4m step.

    python benchmarks/prefix_sharing.py

Evidence for lever 1 of `docs/results/cpu-teacher-experiments.md` before building it into the engine. A batch of
16 sequences = a 270-token schema prefix + a 74-token question/SQL suffix (the embedded benchmark's averages).
"full" runs the 16 x 344 tokens as today; "shared" runs the prefix once per database with a `DynamicCache`,
repeats the cache per question and runs the 16 suffixes against it (position ids continue after the prefix).
It checks that the suffix logits agree with the full forward and prints the time ratio (random weights: timing
does not need trained ones; mean of 3 steps after one warm-up).
"""

from __future__ import annotations

import time

import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

PREFIX, SUFFIX, BATCH = 270, 74, 16
TINY_4M = dict(hidden_size=256, intermediate_size=640, num_hidden_layers=4, num_attention_heads=8)


def measure(model: LlamaForCausalLM, databases: int) -> None:
    """Prints the logit agreement and the full/shared time ratio for BATCH questions over `databases` schemas."""
    prefix = torch.randint(0, model.config.vocab_size, (databases, PREFIX))
    suffix = torch.randint(0, model.config.vocab_size, (BATCH, SUFFIX))
    per = BATCH // databases

    def full() -> torch.Tensor:
        return model(torch.cat([prefix.repeat_interleave(per, 0), suffix], 1)).logits[:, PREFIX:]

    def shared() -> torch.Tensor:
        cache = DynamicCache()
        model(prefix, past_key_values=cache, use_cache=True)
        cache.batch_repeat_interleave(per)
        pos = torch.arange(PREFIX, PREFIX + SUFFIX).unsqueeze(0).expand(BATCH, -1)
        mask = torch.ones(BATCH, PREFIX + SUFFIX, dtype=torch.long)
        return model(suffix, past_key_values=cache, position_ids=pos, attention_mask=mask).logits

    with torch.no_grad():
        diff = (full() - shared()).abs().max().item()
    seconds = {}
    for name, step in [("full", full), ("shared", shared)] * 2:  # the second round is reported
        times = []
        for _ in range(4):
            start = time.time()
            step().float().logsumexp(-1).mean().backward()
            model.zero_grad()
            times.append(time.time() - start)
        seconds[name] = sum(times[1:]) / 3
    print(f"B={BATCH} dbs={databases}: max|logit diff| {diff:.2e}; full {seconds['full']:.3f}s "
          f"shared {seconds['shared']:.3f}s -> {seconds['full'] / seconds['shared']:.2f}x")


def main() -> None:
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=2600, max_position_embeddings=2048, **TINY_4M))
    measure(model, 1)
    measure(model, 4)


if __name__ == "__main__":
    main()
