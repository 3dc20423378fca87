"""The byte-level BPE tokenizer: loadable by AutoTokenizer, lossless on unseen text, no <unk>, digit splitting."""

from __future__ import annotations

import pytest

from kidsql.data.tokenizer import train_tokenizer
from kidsql.errors import KidsqlError

CORPUS = [
    "table singer , columns = [ singer.singer_id ( number | primary key ) , singer.name ( text ) ]",
    "question : How many singers are there?\nSQL: SELECT COUNT(*) FROM singer",
    "SELECT T1.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id WHERE T2.capacity > 5000",
    "SELECT name FROM singer WHERE country = 'France' ORDER BY age DESC LIMIT 1",
] * 20

UNSEEN = [
    "SELECT sänger_name FROM konzert WHERE stadt = 'Zürich'",  # identifiers and values never seen in training
    "question : Which vocalists are older than 42?\nSQL: SELECT name FROM vocalist WHERE age > 42",
    "  double  spaces,\ttabs\nand ünïcödé ✓ 🎵 '' \"quotes\"",
    "museum.num_of_staff ( number | values : 338 , 317 )",
]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from transformers import AutoTokenizer

    out = train_tokenizer(CORPUS, tmp_path_factory.mktemp("tok"), vocab_size=320)
    return AutoTokenizer.from_pretrained(out)


def test_special_tokens_exist_and_are_distinct(tok):
    specials = [tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token]
    assert specials == ["<s>", "</s>", "<pad>", "<unk>"]
    ids = [tok.convert_tokens_to_ids(t) for t in specials]
    assert len(set(ids)) == 4 and all(i < 4 for i in ids)


@pytest.mark.parametrize("text", CORPUS[:4] + UNSEEN)
def test_round_trip_without_unk(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text


def test_no_special_tokens_added_implicitly(tok):
    text = "SELECT name FROM singer"
    assert tok(text)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]


def test_digits_are_single_tokens(tok):
    pieces = tok.tokenize("capacity > 90125")
    digits = [p for p in pieces if any(ch.isdigit() for ch in p)]
    assert digits == ["9", "0", "1", "2", "5"]


def test_training_learns_merges_within_the_vocab_budget(tok):
    assert len(tok) <= 320
    text = "SELECT name FROM singer"
    assert len(tok.tokenize(text)) < len(text.encode()) / 2  # frequent words became single tokens


def test_bad_arguments_are_user_errors(tmp_path):
    with pytest.raises(KidsqlError, match="vocab_size"):
        train_tokenizer(CORPUS, tmp_path, vocab_size=10)
    with pytest.raises(KidsqlError, match="no training texts"):
        train_tokenizer([], tmp_path)


@pytest.mark.parametrize("word", ["singer", "stadium", "capacity", "vocalist", "konzert"])
def test_a_word_is_the_same_tokens_in_the_question_and_inside_an_identifier(tok, word):
    """Copying a name from the question or the schema into the SQL must be copying the same token ids, whether
    the word follows a space (question, SQL), a `.` (`table.column`) or a `_` (`opening_year`)."""
    alone = tok.tokenize(word)
    n = len(alone)
    assert tok.tokenize(f"question : the {word}")[-n - 1:] == ["Ġ", *alone]
    assert tok.tokenize(f"singer.{word}")[-n - 1:] == [".", *alone]
    assert tok.tokenize(f"opening_{word}")[-n - 1:] == ["_", *alone]
    assert tok.tokenize(f"SELECT {word}")[-n - 1:] == ["Ġ", *alone]
