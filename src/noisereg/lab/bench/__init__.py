"""Speed targets measured side by side: ``noisereg bench``.

Each module of this package defines ``TARGETS``, a list of :class:`Target`. A target's
``measure`` times both sides in one process with :func:`side_by_side` (interleaved, after a
warm-up, median of the repeats) and returns the ratio or rate that the target bounds.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pkgutil
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import torch

from noisereg._atomic import atomic_write_text
from noisereg.lab._compare import OPS, check_op, goal


@dataclass(frozen=True)
class Target:
    """``measure() <op> threshold`` is the speed goal; ``unit`` says what the number is."""

    name: str
    description: str
    op: str
    threshold: float
    unit: str
    measure: Callable[[], float]
    peer: bool = False  # compares against an optional external tool; run only with --peers

    def __post_init__(self) -> None:
        check_op(self.op)

    def check(self, measured: float) -> dict[str, Any]:
        """The row of the table: a non-finite measurement never passes."""
        passed = math.isfinite(measured) and OPS[self.op](measured, self.threshold)
        return {"name": self.name, "description": self.description, "unit": self.unit,
                "measured": measured, "expected": goal(self.op, self.threshold),
                "passed": bool(passed)}


def side_by_side(sides: dict[str, Callable[[], Any]], *, repeats: int = 7,
                 warmup: int = 2, inner: int = 1) -> dict[str, float]:
    """Median seconds per call of each side, timing the sides in turn within every repeat."""
    if repeats < 5:
        raise ValueError(f"repeats must be >= 5, got {repeats}")
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(ts) for name, ts in times.items()}


def targets() -> list[Target]:
    found: list[Target] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        found += getattr(importlib.import_module(f"{__name__}.{info.name}"), "TARGETS", [])
    return found


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


# What follows this heading in the written file is the maintainers' (measurements by hand,
# decisions on fast paths) and is carried over when the table is measured again.
NOTES = "## Notes"


def _notes(path: Path) -> str:
    text = path.read_text() if path.is_file() else ""
    at = text.find(f"\n{NOTES}\n")
    return text[at:] if at >= 0 else ""


def _markdown(rows: list[dict[str, Any]], plot: str | None) -> str:
    lines = ["# Benchmarks", "",
             f"Measured by `noisereg bench` on {date.today().isoformat()}: {machine()}.",
             "Both sides of every ratio run in one process, interleaved, median of >= 5 repeats.",
             "", "| target | what | measured | goal | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['description']} | {r['measured']:.3g} {r['unit']} | "
              f"{r['expected']} | {'pass' if r['passed'] else 'FAIL'} |" for r in rows]
    if plot:
        lines += ["", "PEGR step time and peak memory against batch size and width:", "",
                  f"![scaling]({plot})"]
    return "\n".join(lines) + "\n"


def select(only: Sequence[str] | None = None, peers: bool = False) -> list[Target]:
    """The targets named by ``only`` (all when None); peer targets only with ``peers``."""
    chosen = [t for t in targets() if peers or not t.peer]
    if only:
        names = {t.name for t in chosen}
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ValueError(f"unknown benchmark {unknown[0]!r}; valid: {', '.join(sorted(names))}")
        chosen = [t for t in chosen if t.name in only]
    return chosen


def main(chosen: Sequence[Target], *, as_json: bool = False, write: Path | None = None,
         scaling_plot: bool = True) -> int:
    """Measure ``chosen`` and print (or ``--json``) the table; ``write`` the markdown file."""
    rows = []
    for target in chosen:
        row = target.check(float(target.measure()))
        rows.append(row)
        if not as_json:
            print(f"{target.name:36s} {row['measured']:10.3g} {target.unit:8s} "
                  f"goal {row['expected']:10s} {'pass' if row['passed'] else 'FAIL'}", flush=True)
    if as_json:
        print(json.dumps({"machine": machine(), "results": rows}, indent=2))
    if write is not None:
        plot = None
        if scaling_plot:  # the scaling plot comes with a full run
            from noisereg.lab.bench.scaling import plot_scaling

            plot = f"benchmarks/{plot_scaling(write.parent / 'benchmarks')}"
        atomic_write_text(write, _markdown(rows, plot) + _notes(write))
    return 0
