"""The embedded benchmark generator: layout, determinism, executable gold, disjoint splits, hardness mix,
robustness variants, and the benchmark's tokenizer (all on size "small")."""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from kidsql.data.synth import SIZES, generate_benchmark
from kidsql.data.synth.domains import DEV_DOMAINS, DOMAINS
from kidsql.data.synth.grammar import plural
from kidsql.data.synth.renames import ALTERNATIVES, RESERVED, render, renderings
from kidsql.data.synth.variants import SYNONYMS
from kidsql.errors import KidsqlError

SPLITS = ("train", "dev", "dev_syn", "dev_realistic", "dev_dk")


@pytest.fixture(scope="session")
def bench(tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as mp:  # value-index cache of the prompt builder: keep it out of $HOME
        mp.setenv("KIDSQL_CACHE", str(tmp_path_factory.mktemp("cache")))
        return generate_benchmark(tmp_path_factory.mktemp("bench"), seed=0, size="small")


def load(bench: Path, split: str) -> list[dict]:
    return json.loads((bench / f"{split}.json").read_text(encoding="utf-8"))


def instances(bench: Path, db_id: str) -> list[Path]:
    folder = bench / "database" / db_id
    return [folder / f"{db_id}.sqlite"] + sorted(folder.glob(f"{db_id}_*.sqlite"))


def hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_layout_counts_and_tables_json_match_sqlite(bench):
    train, dev = load(bench, "train"), load(bench, "dev")
    assert (len(train), len(dev)) == (SIZES["small"].n_train, SIZES["small"].n_dev)
    tables = json.loads((bench / "tables.json").read_text())
    train_doms = [d for d in DOMAINS if d.db_id not in DEV_DOMAINS]
    expected = [r.db_id for r in renderings(train_doms, SIZES["small"].renderings, 0)] + list(DEV_DOMAINS)
    assert sorted(t["db_id"] for t in tables) == sorted(expected)
    for entry in tables:
        assert set(entry["column_types"]) <= {"text", "number", "time"}
        assert len(entry["column_types"]) == len(entry["column_names"]) == len(entry["column_names_original"])
        for path in instances(bench, entry["db_id"]):
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            for ti, table in enumerate(entry["table_names_original"]):
                cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
                assert cols == [name for t, name in entry["column_names_original"] if t == ti]
                fks = conn.execute(f"PRAGMA foreign_key_list({table})").fetchall()
                declared = [(entry["column_names_original"][a][1], entry["column_names_original"][b][1])
                            for a, b in entry["foreign_keys"] if entry["column_names_original"][a][0] == ti]
                assert sorted((f[3], f[4]) for f in fks) == sorted(declared)
            conn.close()
        assert len(instances(bench, entry["db_id"])) == 4  # main + 3 test-suite instances


def test_every_gold_query_runs_on_every_instance(bench):
    conns: dict[Path, sqlite3.Connection] = {}
    for split in SPLITS:
        for ex in load(bench, split):
            for k, path in enumerate(instances(bench, ex["db_id"])):
                conn = conns.setdefault(path, sqlite3.connect(f"file:{path}?mode=ro", uri=True))
                rows = conn.execute(ex["query"]).fetchall()  # raises on any failure
                if k == 0:
                    assert rows and any(v is not None for v in rows[0]), (split, ex["query"])
    for conn in conns.values():
        conn.close()


def test_instances_differ_in_content(bench):
    db = DEV_DOMAINS[0]
    counts = [sqlite3.connect(p).execute("SELECT group_concat(name) FROM singer").fetchone() for p in instances(bench, db)]
    assert len(set(counts)) == len(counts)


def test_train_and_dev_databases_are_disjoint(bench):
    train_dbs = {ex["db_id"] for ex in load(bench, "train")}
    dev_dbs = {ex["db_id"] for ex in load(bench, "dev")}
    assert dev_dbs == set(DEV_DOMAINS)
    assert not train_dbs & dev_dbs
    assert len(train_dbs) == (len(DOMAINS) - len(DEV_DOMAINS)) * SIZES["small"].renderings
    assert all(re.fullmatch(r"[a-z_]+_v\d\d", db) and db.rsplit("_v", 1)[0] not in DEV_DOMAINS for db in train_dbs)
    # dev table names are never a train table name that a renaming introduced
    tables = {t["db_id"]: t for t in json.loads((bench / "tables.json").read_text())}
    dev_tables = {n for db in dev_dbs for n in tables[db]["table_names_original"]}
    originals = {t.name for d in DOMAINS if d.db_id not in DEV_DOMAINS for t in d.tables}
    for db in train_dbs:
        assert not (set(tables[db]["table_names_original"]) & dev_tables) - originals, db
    for split in SPLITS[2:]:
        assert {ex["db_id"] for ex in load(bench, split)} <= dev_dbs


def test_hardness_mix_by_the_evaluators_classifier(bench):
    hardness = pytest.importorskip("kidsql.sql.hardness", reason="kidsql.sql.hardness not present").hardness
    dev = load(bench, "dev")
    mix = Counter(hardness(ex["query"]) for ex in dev)
    for level in ("easy", "medium", "hard", "extra"):
        assert mix[level] >= 0.10 * len(dev), (level, mix)


def test_sql_is_canonical_and_covers_spider_constructs(bench):
    queries = [ex["query"] for split in ("train", "dev") for ex in load(bench, split)]
    keywords = r"\b(select|from|where|group by|having|order by|limit|join|on|as|and|distinct|count|avg|not in|" \
               r"like|between|intersect|union|except|desc|asc)\b"
    for q in queries:
        bare = re.sub(r"'[^']*'", "''", q)
        assert not re.search(keywords, bare), q  # keywords are upper case, lower-case ones would match
        assert '"' not in q
        aliases = set(re.findall(r"\bAS (\w+)", bare))
        assert aliases <= {"T1", "T2", "T3"}, q
    text = "\n".join(queries)
    for construct in ("JOIN", "GROUP BY", "HAVING", "ORDER BY", "LIMIT", "DISTINCT", "LIKE", "BETWEEN", " IN (",
                      "NOT IN", "(SELECT", "INTERSECT", "UNION", "EXCEPT", "AVG(", "COUNT(*)"):
        assert construct in text, construct


def test_syn_variant_replaces_schema_words_and_keeps_sql(bench):
    dev, syn = load(bench, "dev"), load(bench, "dev_syn")
    assert len(syn) == len(dev)
    for ex in syn:
        base = dev[ex["dev_index"]]
        assert ex["query"] == base["query"] and ex["base_question"] == base["question"]
        assert ex["question"] != base["question"] and ex["changes"]
        for ch in ex["changes"]:
            assert ch["kind"] == "synonym" and ch["to"] in ex["question"]
            assert ex["question"].count(ch["from"]) < base["question"].count(ch["from"]), (ch, ex["question"])


def test_realistic_variant_drops_the_column_mention(bench):
    dev, real = load(bench, "dev"), load(bench, "dev_realistic")
    assert len(real) >= 0.1 * len(dev)
    for ex in real:
        base = dev[ex["dev_index"]]
        assert ex["query"] == base["query"]
        for ch in ex["changes"]:
            col = rf"\b{re.escape(ch['column'])}\b"
            assert re.search(col, base["question"]) and not re.search(col, ex["question"]), ex
            assert ch["from"] in base["question"] and ch["to"] in ex["question"]
            value = ch["from"].rsplit(" is ", 1)[1]
            assert value in ex["question"]  # the value stays; only its column is left implicit


def test_dk_variant_needs_domain_knowledge(bench):
    dev, dk = load(bench, "dev"), load(bench, "dev_dk")
    assert dk
    for ex in dk:
        base = dev[ex["dev_index"]]
        assert ex["query"] == base["query"]
        for ch in ex["changes"]:
            assert ch["to"] in ex["question"] and ch["to"] not in base["question"] and ch["from"] in base["question"]
        if "who are adults" in ex["question"]:
            assert ">= 18" in ex["query"]


def test_tokenizer_round_trips_dev_prompts_without_unk(bench):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(bench / "tokenizer")
    texts = [ex["query"] for ex in load(bench, "dev")] + [ex["question"] for ex in load(bench, "dev_syn")]
    try:
        from kidsql.data.spider import load_tables
        from kidsql.data.types import Example
        from kidsql.prompts import build_prompt
    except ImportError:
        pass
    else:
        schemas = load_tables(bench / "tables.json")
        for ex in load(bench, "dev")[:40]:
            db = bench / "database" / ex["db_id"] / f"{ex['db_id']}.sqlite"
            texts.append(build_prompt(Example(ex["db_id"], ex["question"], ex["query"]), schemas[ex["db_id"]], db))
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == text


def test_domains_are_well_formed():
    assert len(DOMAINS) >= 30 and len({d.db_id for d in DOMAINS}) == len(DOMAINS)
    assert set(DEV_DOMAINS) <= {d.db_id for d in DOMAINS}
    for dom in DOMAINS:
        assert 2 <= len(dom.tables) <= 6 and dom.fks(), dom.db_id
        for t in dom.tables:
            assert t.natural in SYNONYMS, t.natural  # every question can be reworded for dev_syn
            for c in t.columns:
                assert re.fullmatch(r"[a-z][a-z0-9_]*", c.name), c.name
                assert c.natural and "_" not in c.natural
    for word, syn in SYNONYMS.items():
        assert not re.search(rf"\b{re.escape(word)}", syn), (word, syn)  # else "the word is gone" is unverifiable


def test_renderings_rename_consistently_and_differ():
    dom = next(d for d in DOMAINS if d.db_id == "airline")
    views = [render(dom, k, seed=0) for k in range(12)]
    assert [v.db_id for v in views] == [f"airline_v{k:02d}" for k in range(12)]
    assert render(dom, 3, seed=0) == views[3]  # deterministic
    assert len({tuple(t.name for t in v.tables) for v in views}) >= 6  # identifiers vary across renderings
    for v in views:
        assert len(v.tables) == len(dom.tables) and not {t.name for t in v.tables} & RESERVED
        for t in v.tables:
            assert t.columns[0].kind == "id" or t.is_junction
            for c in t.columns:
                assert re.fullmatch(r"[a-z][a-z0-9_]*", c.name) and c.name not in RESERVED, c.name
        for child, fk, parent in v.fks():  # foreign keys follow their renamed parent table
            assert parent.pk is not None and parent.name in {t.name for t in v.tables}
    dev_tables = {t.name for d in DOMAINS if d.db_id in DEV_DOMAINS for t in d.tables}
    for word, alts in ALTERNATIVES.items():
        assert not {a.replace(" ", "_") for a in alts} & dev_tables, word
        assert word not in alts and all(re.fullmatch(r"[a-z]+( [a-z]+)*", a) for a in alts), word


def test_train_questions_use_the_words_of_their_own_rendering(bench):
    tables = {t["db_id"]: t for t in json.loads((bench / "tables.json").read_text())}
    for ex in load(bench, "train"):
        entry = tables[ex["db_id"]]
        used = [nat for name, nat in zip(entry["table_names_original"], entry["table_names"])
                if re.search(rf"\b(FROM|JOIN) {name}\b", ex["query"])]
        # the question names a table of the query by this rendering's natural phrase, not the domain's original
        assert any(nat in ex["question"] or plural(nat) in ex["question"] for nat in used), (ex["question"], used)


def test_plural_of_noun_phrases():
    assert [plural(w) for w in ("city", "match", "day", "date of birth", "singer", "box")] == \
        ["cities", "matches", "days", "dates of birth", "singers", "boxes"]


def test_unknown_size_is_a_user_error(tmp_path):
    with pytest.raises(KidsqlError, match="size"):
        generate_benchmark(tmp_path, size="huge")


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_other_files(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("KIDSQL_CACHE", str(tmp_path / "cache"))
    again = hashes(generate_benchmark(tmp_path / "again", seed=0, size="small"))
    assert again == hashes(bench)
    other = hashes(generate_benchmark(tmp_path / "other", seed=1, size="small"))
    assert other.keys() == again.keys()
    changed = {k for k in again if again[k] != other[k]}
    assert {"train.json", "dev.json", "dev_syn.json"} <= changed
    assert all(f"database/{d}/{d}.sqlite" in changed for d in DEV_DOMAINS)


# ------------------------------------------------------------------------------------------- the "cpu" preset


@pytest.fixture(scope="session")
def cpu_bench(tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KIDSQL_CACHE", str(tmp_path_factory.mktemp("cache_cpu")))
        return generate_benchmark(tmp_path_factory.mktemp("bench_cpu"), seed=0, size="cpu")


def test_cpu_preset_is_in_domain_with_no_train_query_in_dev(cpu_bench):
    preset = SIZES["cpu"]
    train, dev = load(cpu_bench, "train"), load(cpu_bench, "dev")
    # easy shapes over 8 databases with few values offer only so many distinct questions: (nearly) all are drawn
    assert 0.95 * preset.n_train <= len(train) <= preset.n_train and 150 <= len(dev) <= preset.n_dev
    dbs = {d.db_id for d in list(DOMAINS)[: preset.domains]}
    assert {e["db_id"] for e in train} == {e["db_id"] for e in dev} == dbs
    assert not {(e["db_id"], e["query"]) for e in train} & {(e["db_id"], e["query"]) for e in dev}
    assert {t["db_id"] for t in json.loads((cpu_bench / "tables.json").read_text())} == dbs


def test_cpu_preset_uses_few_values_per_column_and_no_hard_shapes(cpu_bench):
    """Literals compared with `=` per (db, table, column): at most value_pool distinct ones across train and dev."""
    preset = SIZES["cpu"]
    literals: dict[tuple[str, str, str], set[str]] = {}
    for split in ("train", "dev"):
        for e in load(cpu_bench, split):
            table = re.search(r"FROM (\w+)", e["query"]).group(1)
            for col, val in re.findall(r"(\w+) = ('[^']*'|\d+)", e["query"]):
                literals.setdefault((e["db_id"], table, col), set()).add(val)
            assert e["shape"].split("_", 1)[0] in preset.draw.levels, e
            assert " INTERSECT " not in e["query"] and " EXCEPT " not in e["query"]
    assert literals and max(len(v) for v in literals.values()) <= preset.draw.value_pool


def test_cpu_preset_words_a_share_of_train_questions_like_the_variant_splits(cpu_bench):
    """About `train_variants` of train is reworded by the syn/realistic/dk lexicons, with the SQL of the plain draw;
    every variant wording of the robustness splits is learnable from train (all three kinds occur there)."""
    from kidsql.data.synth.content import make_rows
    from kidsql.data.synth.examples import Checker, DrawOptions, build_split, make_variant, mix_variants

    preset = SIZES["cpu"]
    doms = list(DOMAINS)[: preset.domains]
    rows = {d.db_id: make_rows(d, random.Random(f"0:{d.db_id}:0")) for d in doms}
    checker = Checker(cpu_bench / "database", 3)
    try:
        plain = build_split("train", doms, rows, 2000, 0, checker, preset.draw)
    finally:
        checker.close()
    mixed = mix_variants(plain, {d.db_id: d for d in doms}, rows, 0, preset.draw)
    assert [e.sql for e in mixed] == [e.sql for e in plain]
    changed = [(p, m) for p, m in zip(plain, mixed) if m.question != p.question]
    assert 0.25 * len(plain) <= len(changed) <= 0.35 * len(plain)  # train_variants = 0.3 of 2,000
    by_id = {d.db_id: d for d in doms}
    kinds = Counter()
    for p, m in changed:  # each rewording is the first applicable lexicon's (dk, realistic, syn) wording
        first = next(k for k in ("dk", "realistic", "syn")
                     if make_variant(k, p, by_id[p.db_id], rows[p.db_id], preset.draw) is not None)
        assert make_variant(first, p, by_id[p.db_id], rows[p.db_id], preset.draw).question == m.question
        kinds[first] += 1
    assert set(kinds) == {"syn", "realistic", "dk"} and kinds["dk"] < kinds["realistic"] < kinds["syn"]
    assert mix_variants(plain, by_id, rows, 0, DrawOptions()) == plain  # off by default (other presets)


def test_cpu_variant_splits_are_large_enough_to_measure_and_dk_aggregates_are_right(cpu_bench):
    """On `cpu` most dev questions are MAX/MIN/AVG/SUM with a WHERE on a name (what train leaves over), so the
    realistic and dk lexicons must reach those: "called X", "the price of the most expensive product"."""
    from kidsql.data.synth.variants import DK_SUPERLATIVE

    dev, real, dk = load(cpu_bench, "dev"), load(cpu_bench, "dev_realistic"), load(cpu_bench, "dev_dk")
    assert len(real) >= 0.2 * len(dev) and len(dk) >= 0.2 * len(dev)
    superlatives = 0
    for ex in dk:
        for ch in ex["changes"]:
            func = re.match(r"(maximum|minimum) (.+?) (of|of all|across all|of the) ", ch["from"])
            if func is None:
                continue
            superlatives += 1
            sql_func = re.search(r"SELECT (MAX|MIN)\((\w+)\)", ex["query"])
            assert sql_func and sql_func.group(1) == {"maximum": "MAX", "minimum": "MIN"}[func.group(1)], ex
            words = DK_SUPERLATIVE[func.group(2)]
            word = words[0] if sql_func.group(1) == "MAX" else words[1]
            assert ch["to"].startswith(f"{func.group(2)} of the {word} "), ch
            assert "maximum" not in ex["question"] and "minimum" not in ex["question"]
    assert superlatives >= 0.9 * len(dk)
    assert sum(" called " in ex["question"] for ex in real) >= 0.5 * len(real)


def test_cpu_medium_preset_adds_medium_shapes_and_longer_sql(cpu_bench, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KIDSQL_CACHE", str(tmp_path_factory.mktemp("cache_cpu_medium")))
        medium = generate_benchmark(tmp_path_factory.mktemp("bench_cpu_medium"), seed=0, size="cpu-medium")
    train, dev = load(medium, "train"), load(medium, "dev")
    levels = [e["shape"].split("_", 1)[0] for e in train + dev]
    assert set(levels) == {"e", "m"} and levels.count("m") > 0.3 * len(levels)
    assert {e["db_id"] for e in dev} <= {e["db_id"] for e in train}  # in-domain, as cpu
    assert not {(e["db_id"], e["query"]) for e in train} & {(e["db_id"], e["query"]) for e in dev}

    def mean_words(bench: Path) -> float:
        queries = [e["query"] for e in load(bench, "dev")]
        return sum(len(q.split()) for q in queries) / len(queries)

    assert mean_words(medium) > 1.2 * mean_words(cpu_bench)
