"""Every public name of the library has a runnable ``>>>`` example in its docstring, which the
test command runs as a doctest (``--doctest-modules`` over ``src/noisereg``): new API without
an example fails here."""

import doctest
import importlib
import inspect
import sys
from types import ModuleType

import pytest

# Packages whose exports are public; the subpackages each exports are walked as well. The
# geometry constants are reached through noisereg.diagnostics.geometry only.
ROOTS = ("noisereg", "noisereg.label_noise", "noisereg.diagnostics.geometry")


def _public(module: ModuleType) -> list[str]:
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, obj in vars(module).items() if not name.startswith("_")
            and getattr(obj, "__module__", None) == module.__name__]


def _exports() -> list[tuple[str, str]]:
    pending, seen, pairs = list(ROOTS), set(), []
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        module = importlib.import_module(name)
        for attr in _public(module):
            pairs.append((name, attr))
            obj = getattr(module, attr)
            if isinstance(obj, ModuleType):
                pending.append(obj.__name__)
    return pairs


EXPORTS = _exports()


def _doctests(module_name: str) -> dict[str, doctest.DocTest]:
    """The doctests pytest collects from a module, by qualified name, with examples."""
    return {t.name: t for t in doctest.DocTestFinder().find(sys.modules[module_name])
            if t.examples}


def test_every_package_is_walked():
    packages = {p for p, _ in EXPORTS}
    assert {"noisereg.optim", "noisereg.gradreg", "noisereg.diagnostics", "noisereg.theory",
            "noisereg.models", "noisereg.data", "noisereg.dln"} <= packages


def test_no_submodule_shadows_an_export():
    # A plain module that defines the object its package exports under the module's own name
    # (theory/group_lasso.py and the function group_lasso) replaces the object: the lazy lookup
    # returns it, and importing it binds it on the package. Modules exported as modules
    # (noisereg.trainer, noisereg.metrics) define nothing of their own name.
    shadowed = [f"{p}.{n}" for p, n in EXPORTS
                if isinstance(obj := getattr(importlib.import_module(p), n), ModuleType)
                and not hasattr(obj, "__path__") and hasattr(obj, n)]
    assert not shadowed, f"exports resolved to modules of the same name: {shadowed}"


@pytest.mark.parametrize(("package", "name"), EXPORTS, ids=[f"{p}.{n}" for p, n in EXPORTS])
def test_public_name_has_a_runnable_example(package: str, name: str):
    obj = getattr(importlib.import_module(package), name)
    if isinstance(obj, ModuleType):
        tests = _doctests(obj.__name__)
        assert obj.__name__ in tests, f"module {obj.__name__} has no >>> example in its docstring"
    elif inspect.isclass(obj) or inspect.isfunction(obj):
        qualified = f"{obj.__module__}.{obj.__qualname__}"
        assert qualified in _doctests(obj.__module__), (
            f"{package}.{name} ({qualified}) has no >>> example in its docstring")
    else:  # a constant: shown in the docstring of the package that exports it
        test = _doctests(package).get(package)
        assert test is not None and any(name in ex.source for ex in test.examples), (
            f"{package}.{name} is not shown in a >>> example of {package}'s docstring")


def test_the_test_command_runs_the_examples(pytestconfig: pytest.Config):
    assert "src/noisereg" in pytestconfig.getini("testpaths")
    assert "--doctest-modules" in pytestconfig.getini("addopts")
