"""Discovers the experiment modules of :mod:`noisereg.lab.experiments` (each defines EXPERIMENT)."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from noisereg.lab.experiments.base import Experiment

_NOT_EXPERIMENTS = {"base", "registry"}


@cache
def experiments() -> dict[str, Experiment]:
    """Name -> experiment, in module order (the order of the report)."""
    import noisereg.lab.experiments as package

    found: dict[str, Experiment] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in _NOT_EXPERIMENTS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        exp = getattr(module, "EXPERIMENT", None)
        if isinstance(exp, Experiment):
            if exp.name in found:
                raise RuntimeError(f"two experiments are named {exp.name!r}")
            found[exp.name] = exp
    return found


def get(name: str) -> Experiment:
    registry = experiments()
    if name not in registry:
        raise ValueError(f"unknown experiment {name!r}; valid: {', '.join(registry)}")
    return registry[name]
