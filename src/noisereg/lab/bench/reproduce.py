"""Wall time of the main job: ``noisereg reproduce --quick`` in a fresh process (<= 15 min), and
what the local pool gains on a small subset (``--jobs 1`` against ``--jobs 2``)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

from noisereg.lab.bench import Target

# ~1 minute of work on one core in 9 seeds of unequal length, the longest first: a subset
# that shows the pool's overhead (worker start-up, the parent's claims and plots) honestly.
SUBSET = ("pgd-group-lasso", "label-noise-convergence", "label-noise-lasso")


def _reproduce_seconds(*args: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "noisereg.lab", "reproduce", "--quick", "--quiet",
                        "--out", out, *args], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def _speedup() -> float:
    """Wall time with ``--jobs 1`` over wall time with ``--jobs 2`` (both printed)."""
    one = _reproduce_seconds("--only", *SUBSET, "--jobs", "1")
    two = _reproduce_seconds("--only", *SUBSET, "--jobs", "2")
    print(f"reproduce --quick --only {' '.join(SUBSET)}: {one:.1f} s with --jobs 1, "
          f"{two:.1f} s with --jobs 2", file=sys.stderr, flush=True)
    return one / two


TARGETS = [Target("reproduce-quick", "`noisereg reproduce --quick`, all experiments, one run",
                  "<=", 900.0, "s", _reproduce_seconds),
           Target("reproduce-jobs-2", "`reproduce --quick` of 3 experiments: wall time with "
                  "`--jobs 1` over `--jobs 2`, one run each", ">=", 1.7, "x", _speedup)]
