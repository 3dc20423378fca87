"""Stand-in teacher/student pairs for benchmarks: Hugging Face architectures with random weights and a real
byte-level BPE tokenizer trained on the fly, saved with `save_pretrained` like a downloaded model.

    python benchmarks/standin_pair.py --out /tmp/pair --arch qwen2 --vocab 32000   # writes /tmp/pair/{teacher,student}

Tokenizer: byte-level BPE (`tokenizers`) trained on the texts given (benchmarks pass their prompts and SQL) plus
seeded pseudo-words that let the merges reach `vocab` entries: real prompts alone hold too few distinct words for
a 32k vocabulary, and the size of the output layer is what a distillation loss pays for. Special tokens follow
each family: Qwen2 has no BOS and EOS = PAD = `<|endoftext|>`; Llama `<s>`/`</s>` with `<unk>`; GPT-2 one
`<|endoftext|>` for BOS, EOS and PAD. The models' `vocab_size` equals the tokenizer's length, so their logits
cover exactly the tokenizer's entries. Models are float32, randomly initialised from `seed` (timing and memory do
not need trained weights).
"""

from __future__ import annotations

import argparse
import random
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIALS = {
    "qwen2": {"eos": "<|endoftext|>", "pad": "<|endoftext|>"},
    "llama": {"bos": "<s>", "eos": "</s>", "pad": "</s>", "unk": "<unk>"},
    "gpt2": {"bos": "<|endoftext|>", "eos": "<|endoftext|>", "pad": "<|endoftext|>"},
}
SIZES = {  # (hidden, intermediate, layers, heads, kv heads)
    "teacher": (256, 704, 4, 4, 2),
    "student": (128, 352, 2, 4, 2),
}


def pseudo_words(n: int, seed: int = 0) -> list[str]:
    """`n` seeded random lower-case words (3-9 letters): filler text that gives BPE merges to learn."""
    rng = random.Random(seed)
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(n)]


def train_tokenizer(texts: Iterable[str], arch: str = "qwen2", vocab: int = 32000, seed: int = 0) -> Any:
    """A byte-level BPE `PreTrainedTokenizerFast` of (at most) `vocab` entries with `arch`'s special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS[arch]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    unique = list(dict.fromkeys(specials.values()))
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=unique, min_frequency=1,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    filler = pseudo_words(vocab * 2, seed)
    corpus = list(texts) + [" ".join(filler[i : i + 64]) for i in range(0, len(filler), 64)]
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **{f"{k}_token": v for k, v in specials.items()})


def build_model(arch: str, tokenizer: Any, role: str, seed: int = 0, max_positions: int = 2048) -> Any:
    """A randomly initialised float32 causal LM of `arch` sized for `role` ("teacher" or "student")."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    hidden, inter, layers, heads, kv = SIZES[role]
    ids = {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
           "bos_token_id": tokenizer.bos_token_id}
    torch.manual_seed(seed)
    if arch == "gpt2":
        cfg = GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers, n_head=heads,
                         n_positions=min(max_positions, 1024), **ids)
        return GPT2LMHeadModel(cfg)
    common = dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=max_positions,
                  tie_word_embeddings=False, **ids)
    if arch == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common))
    return LlamaForCausalLM(LlamaConfig(**common))


def build_pair(out: Path, texts: Iterable[str], *, arch: str = "qwen2", vocab: int = 32000, seed: int = 0
               ) -> tuple[Path, Path]:
    """Write `out/teacher` and `out/student` (model + the same tokenizer); returns the two folders."""
    tokenizer = train_tokenizer(texts, arch, vocab, seed)
    dirs = []
    for i, role in enumerate(("teacher", "student")):
        folder = Path(out) / role
        build_model(arch, tokenizer, role, seed=seed + i).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        dirs.append(folder)
    return dirs[0], dirs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--arch", choices=sorted(SPECIALS), default="qwen2")
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--texts", help="a text file to train the tokenizer on (one text a line); default: filler only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    texts = Path(args.texts).read_text(encoding="utf-8").splitlines() if args.texts else []
    teacher, student = build_pair(Path(args.out), texts, arch=args.arch, vocab=args.vocab, seed=args.seed)
    print(f"teacher: {teacher}\nstudent: {student}")


if __name__ == "__main__":
    main()
