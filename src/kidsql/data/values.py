"""Database values for prompts: sample values per column and the values a question mentions ("matched values").

Scanning every value of a database against every question is quadratic and slow on BIRD-sized files, so each
database gets a `ValueIndex` built once: a dict from a normalised value to the columns holding it, plus the
first few distinct values of every column. Matching then looks up the question's word n-grams in that dict,
which costs O(question length x max n), whatever the database size.

The index is cached on disk under `cache_dir()/value_index/`, keyed by the file's resolved path, size, mtime
and SQLite change counter (a changed database gets a new key), and memoised in memory for the process.
Normalisation is NFKC + casefold + splitting on non-word characters (Unicode-aware, so "Sänger" matches
"sänger"); accents are kept. There is no fuzzy fallback: matching is exact on normalised whole words.
"""

from __future__ import annotations

import pickle
import re
import sqlite3
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from kidsql.data.sqlite_schema import connect_readonly, quote_ident
from kidsql.errors import KidsqlError
from kidsql.files import hex_digest, write_atomic
from kidsql.paths import cache_dir

INDEX_VERSION = 1
MAX_VALUE_CHARS = 64  # longer texts (descriptions, addresses) are not "values" a question names
MAX_VALUES_PER_COLUMN = 5000
MAX_NGRAM = 6
SAMPLE_CAP = 8  # sample values stored per column; prompts use at most this many
SAMPLE_CHARS = 32  # sample values longer than this are truncated with "..."
MIN_VALUE_CHARS = 2  # one-letter values ("F", "a") would match almost every question

# Single question words that are never taken as a value mention: function words of English and German (the
# benchmarks' languages) collide with real values (country code "IN", district "Sind", "GIB") far more often
# than a question means them. Multi-word values containing them still match.
STOPWORDS = frozenset(
    """a an and are as at be by do for from gib give has have how in is it its list me not of on or show
    that the their there to was what when where which who with all any each many much
    alle als am an auch auf aus bei bitte das dem den der des die ein eine einen einer es für gibt hat haben im
    in ist mit nach nenne nicht oder sind über um und von was welche welcher welches wer wie wo zeige zu zum
    zur""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
_MEMORY: dict[str, "ValueIndex"] = {}


def words(text: str) -> list[str]:
    """Normalised words: NFKC, casefold, Unicode word characters only."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def normalize(text: str) -> str:
    return " ".join(words(text))


def _display(value: object) -> str:
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 3] + "..."


@dataclass
class ValueIndex:
    """Distinct text values of one database, by normalised form, and sample values per column.

    `lookup`: normalised value -> [(table, column, original value)]; `samples`: (table, column) -> first
    distinct non-null, non-empty values in table order (display form, truncated). `source` says where this
    instance came from: "built", "disk" or "memory" (lets tests check the cache without timing).
    """

    db_path: str
    lookup: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    samples: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    max_words: int = 1
    source: str = "built"

    def match(self, question: str, *, max_per_column: int = 3) -> dict[tuple[str, str], list[str]]:
        """{(table, column): values} whose normalised form occurs in the question as whole words, in the order
        they first appear in the question; longer n-grams first at the same position."""
        q = words(question)
        out: dict[tuple[str, str], list[str]] = {}
        top = min(self.max_words, MAX_NGRAM)
        for start in range(len(q)):
            for n in range(min(top, len(q) - start), 0, -1):
                gram = " ".join(q[start : start + n])
                hits = self.lookup.get(gram)
                if not hits or (n == 1 and gram in STOPWORDS):
                    continue
                for table, column, value in hits:
                    found = out.setdefault((table, column), [])
                    if value not in found and len(found) < max_per_column:
                        found.append(value)
        return out


def _text_values(con: sqlite3.Connection, table: str, column: str) -> list[str]:
    sql = (
        f"SELECT DISTINCT {quote_ident(column)} FROM {quote_ident(table)} "
        f"WHERE typeof({quote_ident(column)}) = 'text' AND length({quote_ident(column)}) <= ? LIMIT ?"
    )
    return [r[0] for r in con.execute(sql, (MAX_VALUE_CHARS, MAX_VALUES_PER_COLUMN))]


def _sample_values(con: sqlite3.Connection, table: str, column: str) -> list[str]:
    q = quote_ident(column)
    sql = (
        f"SELECT DISTINCT {q} FROM {quote_ident(table)} WHERE {q} IS NOT NULL AND typeof({q}) != 'blob' "
        f"AND trim({q}) != '' LIMIT ?"
    )
    return [_display(r[0]) for r in con.execute(sql, (SAMPLE_CAP,))]


def build_value_index(db_path: Path) -> ValueIndex:
    """Scan a database once (read-only): distinct short text values of every column, and sample values."""
    from kidsql.data.sqlite_schema import read_schema

    schema = read_schema(db_path, db_path.stem)
    index = ValueIndex(db_path=str(db_path))
    con = connect_readonly(db_path)
    columns = [(t.name, c.name) for t in schema.tables for c in t.columns]
    # BIRD-sized files take a while once; the bar shows only on a terminal (disable=None)
    bar = tqdm(columns, desc=f"value index {db_path.stem}", unit="col", leave=False, disable=None)
    try:
        for table_name, col_name in bar:
            try:
                index.samples[(table_name, col_name)] = _sample_values(con, table_name, col_name)
                values = _text_values(con, table_name, col_name)
            except sqlite3.Error:
                continue  # a broken view/column only loses its values, not the index
            for value in values:
                norm = normalize(value)
                n_words = norm.count(" ") + 1
                if len(norm) < MIN_VALUE_CHARS or n_words > MAX_NGRAM:
                    continue  # too short to mean anything, or too long to be looked up
                index.lookup.setdefault(norm, []).append((table_name, col_name, value))
                index.max_words = max(index.max_words, n_words)
    finally:
        bar.close()
        con.close()
    return index


def _cache_key(db_path: Path) -> str:
    st = db_path.stat()
    with open(db_path, "rb") as fh:
        # SQLite's header "file change counter" (bytes 24-27) moves on every commit, even within one mtime tick
        counter = fh.read(100)[24:28].hex()
    raw = (
        f"{INDEX_VERSION}|{db_path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{counter}|"
        f"{MAX_VALUE_CHARS}|{MAX_VALUES_PER_COLUMN}|{SAMPLE_CAP}|{SAMPLE_CHARS}|{MIN_VALUE_CHARS}"
    )
    return hex_digest(raw, 20, algorithm="sha1")  # sha1: the names of the indexes already cached on disk


def cache_path(db_path: Path) -> Path:
    """Where the index of `db_path` is (or will be) cached."""
    return cache_dir() / "value_index" / f"{Path(db_path).stem}-{_cache_key(Path(db_path))}.pkl"


def load_value_index(db_path: Path, *, use_cache: bool = True) -> ValueIndex:
    """The index of `db_path`: from memory, else from the disk cache, else built (and then cached)."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise KidsqlError(f"{db_path}: SQLite database not found; check the benchmark's database folder")
    if not use_cache:
        return build_value_index(db_path)
    target = cache_path(db_path)
    key = str(target)
    if key in _MEMORY:
        _MEMORY[key].source = "memory"
        return _MEMORY[key]
    index: ValueIndex | None = None
    if target.is_file():
        try:
            with open(target, "rb") as fh:
                index = pickle.load(fh)
            index.source = "disk"
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            index = None  # a corrupt cache file is rebuilt, not fatal
    if index is None:
        index = build_value_index(db_path)
        # atomic: parallel workers never read a half-written file
        write_atomic(target, lambda fh: pickle.dump(index, fh, protocol=pickle.HIGHEST_PROTOCOL))
    _MEMORY[key] = index
    return index


def clear_memory_cache() -> None:
    """Forget in-process indexes (the disk cache stays); for tests and long-lived processes."""
    _MEMORY.clear()
