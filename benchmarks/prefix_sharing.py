"""What sharing a database's schema prefix across a batch would save: forward+backward of one tiny:4m step.

    python benchmarks/prefix_sharing.py

Evidence for lever 1 of `docs/results/cpu-teacher-experiments.md` before building it into the engine. A batch of
16 sequences = a 270-token schema prefix + a 74-token question/SQL suffix (the embedded benchmark's averages).
"full" runs the 16 x 344 tokens as today; "shared" runs the prefix once per database with a `DynamicCache`,
repeats the cache per question and runs the 16 suffixes against it (position ids continue after the prefix).
It checks that the suffix logits agree with the full forward and prints the time ratio (random weights: timing
does not need trained ones; mean of 3 steps after one warm-up).
"""
import time, torch
from transformers import LlamaConfig, LlamaForCausalLM, DynamicCache
torch.manual_seed(0)
m = LlamaForCausalLM(LlamaConfig(vocab_size=2600, max_position_embeddings=2048, hidden_size=256, intermediate_size=640, num_hidden_layers=4, num_attention_heads=8))
P, S = 270, 74
def run(B, groups):
    prefix = torch.randint(0, 2600, (groups, P)); suf = torch.randint(0, 2600, (B, S))
    per = B // groups
    def full():
        x = torch.cat([prefix.repeat_interleave(per, 0), suf], 1)
        out = m(x).logits[:, P:]
        return out
    def shared():
        cache = DynamicCache()
        m(prefix, past_key_values=cache, use_cache=True)
        cache.batch_repeat_interleave(per)
        pos = torch.arange(P, P + S).unsqueeze(0).expand(B, -1)
        return m(suf, past_key_values=cache, position_ids=pos, attention_mask=torch.ones(B, P + S, dtype=torch.long)).logits
    with torch.no_grad():
        d = (full() - shared()).abs().max().item()
    res = {}
    for name, f in [("full", full), ("shared", shared)] * 2:
        ts = []
        for _ in range(4):
            t = time.time(); f().float().logsumexp(-1).mean().backward(); m.zero_grad(); ts.append(time.time() - t)
        res[name] = sum(ts[1:]) / 3
    print(f"B={B} dbs={groups}: max|logit diff| {d:.2e}; full {res['full']:.3f}s shared {res['shared']:.3f}s -> {res['full']/res['shared']:.2f}x")
run(16, 1); run(16, 4)
