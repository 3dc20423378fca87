"""`kidsql data show` on the real German Spider dev set, and `kidsql data synth`'s wiring and overwrite guard."""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest

from kidsql.cli import main


pytestmark = pytest.mark.usefixtures("isolated_cache")


def _has_hardness() -> bool:
    try:
        return importlib.util.find_spec("kidsql.sql.hardness") is not None
    except ModuleNotFoundError:
        return False


def test_show_spider_de_counts_and_prompt(spider_de: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "show", str(spider_de), "--n", "2"]) == 0
    out = capsys.readouterr().out
    assert "| dev | 1030 |" in out
    assert "| examples in dev | 1030 |" in out
    assert "| databases used by dev | 20 |" in out
    assert re.search(r"\| database files in \S+ \| 163 \|", out)
    assert "| schemas | 164 |" in out
    assert out.count("## sample prompt:") == 2
    assert "table sänger , columns = [ sänger.sänger_id" in out
    assert "question : Wie viele Sängerinnen und Sänger haben wir?\nSQL:\n```" in out
    if _has_hardness():
        rows = dict(re.findall(r"^\| (easy|medium|hard|extra|unparsed) \| (\d+) \|", out, flags=re.M))
        assert sum(int(v) for v in rows.values()) == 1030
        assert int(rows.get("unparsed", 0)) < 1030
    else:
        assert "hardness: unavailable" in out


def test_show_missing_split_is_one_line_error(spider_de: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "show", str(spider_de), "--split", "train"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "splits present: dev" in err


def test_synth_wires_generator_and_guards_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    calls = []

    def fake_generate(out: Path, *, seed: int = 0, size: str = "small") -> Path:
        calls.append((Path(out), seed, size))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "dev.json").write_text("[]")
        return Path(out)

    monkeypatch.setitem(sys.modules, "kidsql.data.synth", types.SimpleNamespace(generate_benchmark=fake_generate))
    out = tmp_path / "bench"
    assert main(["data", "synth", "--out", str(out), "--seed", "3", "--size", "full"]) == 0
    assert calls == [(out, 3, "full")]
    assert main(["data", "synth", "--out", str(out)]) == 2  # now non-empty
    assert "not empty" in capsys.readouterr().err and len(calls) == 1
    assert main(["data", "synth", "--out", str(out), "--force"]) == 0
    assert calls[-1] == (out, 0, "small")
