"""Wall time of the main job: ``noisereg reproduce --quick`` in a fresh process (<= 15 min)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

from noisereg.bench import Target


def _reproduce_seconds() -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "noisereg", "reproduce", "--quick", "--quiet",
                        "--out", out], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


TARGETS = [Target("reproduce-quick", "`noisereg reproduce --quick`, all experiments, one run",
                  "<=", 900.0, "s", _reproduce_seconds)]
