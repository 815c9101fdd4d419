"""The layers of the package. The oracles do not depend on the implementations they check:
``noisereg.theory`` imports nothing from ``noisereg.optim``. The library (everything outside
``noisereg.lab``) imports nothing from the lab, and nothing but the standard library, torch and
numpy (an optional dependency is reached through ``noisereg._extras.require``); ``pip install .``
in a clean virtual environment installs torch, numpy and nothing else, and there a
PerturbedOptimizer step runs while the parts that need an extra name it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import noisereg

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(noisereg.__file__).parent
LIBRARY = sorted(p for p in PACKAGE.rglob("*.py") if "lab" not in p.relative_to(PACKAGE).parts)
ALLOWED = {"torch", "numpy", "noisereg", "__future__", *sys.stdlib_module_names}


def _imports(path: Path) -> list[str]:
    """The module of every import statement of ``path`` (in functions too), relative resolved."""
    package = ".".join(("noisereg", *path.relative_to(PACKAGE).parent.parts))
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.append(name)
    return found


def test_the_library_sees_the_layout_it_should() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in LIBRARY}
    assert {"optim/perturbed.py", "gradreg/norms.py", "train.py"} <= names
    assert not any(n.startswith("lab/") for n in names)


def test_no_library_module_imports_the_lab() -> None:
    offending = [f"{p.relative_to(PACKAGE)}: {name}" for p in LIBRARY for name in _imports(p)
                 if name == "noisereg.lab" or name.startswith("noisereg.lab.")]
    assert not offending, offending


def test_library_modules_import_only_torch_numpy_and_the_standard_library() -> None:
    offending = [f"{p.relative_to(PACKAGE)}: {name}" for p in LIBRARY for name in _imports(p)
                 if name.split(".")[0] not in ALLOWED]
    assert not offending, offending


THEORY = textwrap.dedent("""
    import importlib, pkgutil, sys
    import noisereg.theory as theory
    for info in pkgutil.iter_modules(theory.__path__):
        importlib.import_module(f"noisereg.theory.{info.name}")
    print(sorted(m for m in sys.modules if m.startswith("noisereg.optim")))
""")


def test_theory_imports_nothing_from_optim() -> None:
    out = subprocess.run([sys.executable, "-c", THEORY], capture_output=True, text=True,
                         check=True, timeout=120)  # at import time, in a fresh interpreter
    assert out.stdout.strip() == "[]", out.stdout
    offending = [f"{p.relative_to(PACKAGE)}: {name}" for p in LIBRARY  # nor inside a function
                 if p.relative_to(PACKAGE).parts[0] == "theory" for name in _imports(p)
                 if name == "noisereg.optim" or name.startswith("noisereg.optim.")]
    assert not offending, offending


PROGRAM = textwrap.dedent("""
    import sys

    import torch
    import noisereg

    model = noisereg.models.MLP(4, [8], 3, seed=0)
    opt = noisereg.PerturbedOptimizer(model.parameters(), torch.optim.SGD, sigma=0.1,
                                      mode="layerwise", seed=0, lr=0.1)
    x, y = torch.ones(5, 4), torch.zeros(5, dtype=torch.long)
    before = [p.detach().clone() for p in model.parameters()]
    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss
    opt.step(closure)
    print("stepped", any(not torch.equal(a, b) for a, b in zip(before, model.parameters())))
    for name in ("noisereg.dln", "noisereg.lab"):
        try:
            __import__(name)
        except ImportError as err:
            print("refused", name, "|", err)
    try:
        noisereg.data.load_split("digits", 10, 10, seed=0)
    except ImportError as err:
        print("refused digits |", err)
    print("loaded", sorted({m.split(".")[0] for m in sys.modules}
                           & {"scipy", "sklearn", "matplotlib", "numba", "tqdm", "mlxtend"}))
""")


def test_pip_install_in_a_clean_venv_needs_only_torch_and_numpy(tmp_path) -> None:
    venv, env = tmp_path / "venv", {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    # The CPU build on this disk first: a bare `torch` requirement would pull a CUDA build.
    subprocess.run([*pip, "torch==2.13.0"], check=True, env=env, capture_output=True)
    subprocess.run([*pip, str(ROOT)], check=True, env=env, capture_output=True)
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list",
                             "--format=freeze"], check=True, env=env, capture_output=True,
                            text=True).stdout
    installed = {line.split("==")[0].lower() for line in listed.split()}
    torch_closure = {"torch", "filelock", "fsspec", "jinja2", "markupsafe", "mpmath", "networkx",
                     "sympy", "typing_extensions", "typing-extensions", "setuptools", "pip"}
    assert installed - torch_closure == {"numpy", "noisereg"}, installed
    out = subprocess.run([str(venv / "bin" / "python"), "-c", PROGRAM], check=True, env=env,
                         cwd=tmp_path, capture_output=True, text=True).stdout.splitlines()
    assert out[0] == "stepped True"
    assert "refused noisereg.dln | noisereg.dln's compiled simulator needs numba: pip install " \
           "'noisereg[dln]'" in out
    assert any(line.startswith("refused noisereg.lab |") and "'noisereg[lab]'" in line
               for line in out), out
    assert any(line.startswith("refused digits |") and "'noisereg[data]'" in line
               for line in out), out
    assert out[-1] == "loaded []"
