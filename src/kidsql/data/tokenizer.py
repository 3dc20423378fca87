"""A small byte-level BPE tokenizer for tiny models trained from scratch.

Byte-level BPE never needs `<unk>`: every string, including table names and values that only occur in dev
databases, is encodable, and decoding gives the exact input back. Digits are split one by one so that numbers
in the prompt are copied into the SQL digit by digit, which tiny models learn far more easily than a vocabulary
of number tokens. The tokenizer adds no BOS/EOS by itself: the trainer places them (e.g. EOS after the SQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kidsql.errors import KidsqlError

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
# A space before a letter or digit is its own token, so a word is the same token sequence after a space (in the
# question), after `_` or `.` (inside `table.column_name`) and at the start of the SQL.
SPACE_BEFORE_WORD = r" (?=[A-Za-z0-9])"


def train_tokenizer(texts: Iterable[str], out_dir: Path, *, vocab_size: int = 4000, min_frequency: int = 2) -> Path:
    """Train byte-level BPE on `texts` and save a transformers tokenizer folder (AutoTokenizer-loadable)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 300:
        raise KidsqlError(f"vocab_size={vocab_size} for {out_dir}: use at least 300 (256 bytes + specials + merges)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPACE_BEFORE_WORD), behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = list(texts)
    if not texts:
        raise KidsqlError(f"no training texts for the tokenizer in {out_dir}: pass a non-empty corpus")
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        clean_up_tokenization_spaces=False, model_max_length=4096,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return out_dir
