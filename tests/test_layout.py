"""The package's layers, read from the source: the library never imports the experiments or the command layer,
the experiments never import the command layer, and kidsql's own modules are imported without ImportError
fallbacks (a missing module of kidsql is a broken install, not an optional feature)."""

from __future__ import annotations

import ast
from pathlib import Path

import kidsql

ROOT = Path(kidsql.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module name `path` imports, at any depth (function-local imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _layer(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    if rel[0] in ("commands", "experiments"):
        return rel[0]
    return "cli" if rel[0] == "cli.py" else "library"


def test_imports_only_go_down_the_layers():
    forbidden = {"library": ("kidsql.commands", "kidsql.experiments", "kidsql.cli"),
                 "experiments": ("kidsql.commands", "kidsql.cli"), "commands": ("kidsql.cli",), "cli": ()}
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden[_layer(path)]):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_the_checker_sees_a_wrong_import(tmp_path):
    """The walk above finds a function-local import: the test can fail."""
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from kidsql.experiments.bench import run_bench\n", encoding="utf-8")
    assert "kidsql.experiments.bench" in _imports(bad)


def test_no_import_error_fallback_for_kidsql_modules():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Try):
                continue
            catches = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if not any("ImportError" in c or "ModuleNotFoundError" in c for c in catches):
                continue
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom) and (inner.level > 0 or (inner.module or "").startswith("kidsql")):
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
                if isinstance(inner, ast.Import) and any(a.name.startswith("kidsql") for a in inner.names):
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert found == []
