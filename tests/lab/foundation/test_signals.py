"""A real experiment stopped by SIGTERM or SIGINT and resumed ends with the same numbers."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = ["run", "label-noise-lasso", "--set", "steps=600000", "--seeds", "3", "--quiet"]


def _at_a_terminal() -> None:
    # A job started in the background by a non-interactive shell inherits SIGINT ignored (and
    # Python then keeps ignoring it); the test plays a user at a terminal pressing Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _noisereg(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "noisereg.lab", *args],
                            preexec_fn=_at_a_terminal, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopped_run_resumes_to_the_uninterrupted_result(tmp_path: Path, signum: int) -> None:
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert _noisereg(*ARGS, "--out", str(whole)).wait(timeout=300) == 0
    proc = _noisereg(*ARGS, "--out", str(part))
    runs = part / ".label-noise-lasso.partial" / "runs.jsonl"
    deadline = time.monotonic() + 120
    while not (runs.exists() and runs.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, "no seed finished in time"
        time.sleep(0.02)
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == 130, proc.stderr.read()
    assert "--resume" in proc.stderr.read()
    done = runs.read_text().count("\n")
    assert 1 <= done < 3 and not (part / "label-noise-lasso").exists()
    assert not list(part.rglob("*.tmp"))
    assert _noisereg(*ARGS, "--resume", "--out", str(part)).wait(timeout=300) == 0
    summary = Path("label-noise-lasso") / "summary.json"
    assert (part / summary).read_bytes() == (whole / summary).read_bytes()
