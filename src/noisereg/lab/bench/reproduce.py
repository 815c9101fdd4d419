"""Wall time of the main job: ``noisereg reproduce --quick``, the whole preset, with ``--jobs 1``
and ``--jobs 2`` side by side (<= 15 min; >= 1.7x on 2 cores), and the full preset's estimated
wall time.

The whole quick preset, not a subset: what the pool gains depends on the tail, the last long
units that leave a worker idle, and a subset has another tail. The two runs are made once and
shared by the targets (~12 min on 2 idle cores).

The full preset (hours) is estimated, not run: one full seed of every experiment runs on the
local pool of 2 workers (~15-20 min), each experiment's other seeds are taken to cost what
that seed cost (its config is the same, only the seed differs), and the preset's units, in
the order the runner submits them, are scheduled on 1 and on 2 workers as the pool does: each
unit to the first worker free (:func:`makespan`). Seeds measured two at a time share the
machine, so the 1-worker figure leans high. Not counted: the parent's claims, plots and report
(seconds).
"""

from __future__ import annotations

import heapq
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import cache

from noisereg.lab.bench import Target


def makespan(seconds: Sequence[float], workers: int) -> float:
    """Wall time of units of ``seconds`` handed in order to ``workers`` workers, each unit
    to the first worker free (ties: the lowest index), as a process pool does."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    free = [(0.0, w) for w in range(workers)]  # (time the worker is free, worker)
    end = 0.0
    for length in seconds:
        start, worker = heapq.heappop(free)
        end = max(end, start + length)
        heapq.heappush(free, (start + length, worker))
    return end


def _reproduce_seconds(*args: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "noisereg.lab", "reproduce", "--quick", "--quiet",
                        "--out", out, *args], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


@cache
def _quick() -> tuple[float, float]:
    """Wall seconds of the whole quick preset with ``--jobs 1`` and with ``--jobs 2``."""
    one, two = _reproduce_seconds("--jobs", "1"), _reproduce_seconds("--jobs", "2")
    print(f"reproduce --quick: {one:.0f} s with --jobs 1, {two:.0f} s with --jobs 2",
          file=sys.stderr, flush=True)
    return one, two


def _full_minutes() -> float:
    """Estimated minutes of ``reproduce --full --jobs 2`` (``--jobs 1`` printed beside it)."""
    from noisereg.lab._pool import local_pool
    from noisereg.lab.experiments.registry import experiments
    from noisereg.lab.runner import run_seed

    registry = list(experiments().values())
    with local_pool(2) as pool:
        futures = [pool.submit(run_seed, exp, exp.preset("full"), 0,
                               exp.digest(exp.preset("full"))) for exp in registry]
        per_unit = [future.result()["seconds"] for future in futures]
    units = [s for exp, s in zip(registry, per_unit) for _ in range(exp.default_seeds("full"))]
    one, two = makespan(units, 1) / 60, makespan(units, 2) / 60
    slowest = max(zip(per_unit, (e.name for e in registry)))
    print(f"reproduce --full, estimated: {one:.0f} min with --jobs 1, {two:.0f} min with "
          f"--jobs 2 ({len(units)} units; longest {slowest[1]}, {slowest[0]:.0f} s a seed)",
          file=sys.stderr, flush=True)
    return two


TARGETS = [
    Target("reproduce-quick", "`noisereg reproduce --quick`, all experiments, `--jobs 2` "
           "(the default on 2 cores), one run", "<=", 900.0, "s", lambda: _quick()[1]),
    Target("reproduce-jobs-2", "`reproduce --quick`, the whole preset (a subset has another "
           "tail): wall time with `--jobs 1` over `--jobs 2`, one run each, both printed",
           ">=", 1.7, "x", lambda: _quick()[0] / _quick()[1]),
    Target("reproduce-full-estimate", "`reproduce --full --jobs 2`, estimated: one full seed "
           "of each experiment timed on the pool, times its seeds, the units scheduled on 2 "
           "workers in the runner's order (each to the first free worker); `--jobs 1` printed "
           "beside it", "<=", 120.0, "min", _full_minutes),
]
