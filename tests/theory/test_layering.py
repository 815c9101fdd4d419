"""The oracles do not depend on the implementations they check: ``noisereg.theory`` imports
nothing from ``noisereg.optim``, neither at import time (a fresh interpreter) nor inside a
function (the import statements of its source)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import noisereg.theory

PROGRAM = """
import importlib, pkgutil, sys
import noisereg.theory as theory
for info in pkgutil.iter_modules(theory.__path__):
    importlib.import_module(f"noisereg.theory.{info.name}")
print(sorted(m for m in sys.modules if m.startswith("noisereg.optim")))
"""


def test_importing_theory_loads_nothing_from_optim() -> None:
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout


def test_no_theory_source_imports_optim() -> None:
    offending = []
    for path in Path(noisereg.theory.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offending += [f"{path.name}: {n}" for n in names
                          if n == "noisereg.optim" or n.startswith("noisereg.optim.")]
    assert not offending, offending
