"""Every benchmarks/*.py script still imports and parses its options: the layout move of issue 29 broke two of
them silently (they import library names, and nothing else runs them)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sqlshift

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))


def sqlshift_imports(script: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every ``from sqlshift... import name`` in a script, in functions too."""
    out = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlshift":
            out += [(node.lineno, node.module, a.name) for a in node.names]
    return out


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 9 and all(p.name != "__init__.py" for p in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_sqlshift_name_a_script_imports_exists(script: Path) -> None:
    missing = []
    for line, module, name in sqlshift_imports(script):
        mod = importlib.import_module(module)
        if not hasattr(mod, name) and importlib.util.find_spec(f"{module}.{name}") is None:
            missing.append(f"{script.name}:{line}: {module}.{name}")
    assert not missing


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_answers_help(script: Path) -> None:
    src = str(Path(sqlshift.__file__).resolve().parents[1])  # the sqlshift these tests import
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr[-2000:]
