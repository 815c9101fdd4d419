"""Seeds run on a pool of worker processes give the bytes of a sequential run; a parallel run
that fails, or is stopped or killed, keeps what finished and resumes to the same summaries."""

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from noisereg.lab._pool import local_pool
from noisereg.lab.cli import main
from noisereg.lab.experiments.registry import get
from noisereg.lab.runner import run_many

TINY = {"label-noise-lasso": dict(n=15, d=30, k=3, steps=20_000),
        "pgd-group-lasso": dict(n=12, groups=5, k=3, active=2, steps=400)}


def _runs() -> list:
    return [(get(name), dataclasses.replace(get(name).quick, **tiny), [0, 1, 2], "quick")
            for name, tiny in TINY.items()]


def _records(path: Path) -> list[dict]:
    """The records of a runs.jsonl without their timings, which no two runs share."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _same_results(a: Path, b: Path, name: str) -> None:
    files = sorted(p.name for p in (a / name).iterdir())
    assert files == sorted(p.name for p in (b / name).iterdir())
    for file in files:
        if file != "runs.jsonl":
            assert (a / name / file).read_bytes() == (b / name / file).read_bytes(), file
    assert _records(a / name / "runs.jsonl") == _records(b / name / "runs.jsonl")


def test_a_pool_gives_the_bytes_of_a_sequential_run(tmp_path) -> None:
    done: list[str] = []
    sequential = run_many(_runs(), tmp_path / "one")
    with local_pool(2) as pool:
        parallel = run_many(_runs(), tmp_path / "two", executor=pool,
                            on_done=lambda s, eta: done.append((s["experiment"], eta.done)))
    assert parallel == sequential and sorted(name for name, _ in done) == sorted(TINY)
    assert done[-1][1] == 6  # units done when the last experiment finished: all of them
    for name in TINY:
        _same_results(tmp_path / "one", tmp_path / "two", name)
    assert [r["seed"] for r in _records(tmp_path / "two" / "pgd-group-lasso" / "runs.jsonl")] \
        == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(TINY)


def test_a_unit_failing_in_a_worker_ends_like_a_sequential_failure(tmp_path, tree,
                                                                   one_line_error) -> None:
    tiny = [f"--set={k}={v}" for k, v in TINY["label-noise-lasso"].items()]
    args = ["run", "label-noise-lasso", *tiny, "--seeds", "2", "--quiet", "--out",
            str(tmp_path)]
    assert main([*args, "--jobs", "2"]) == 0
    before = tree(tmp_path)
    # Valid, but past the edge of linear stability: every seed diverges within a few steps.
    diverging = ["--set", "init_scales=0.01,1", "--set", "step_size=0.03"]
    assert main([*args, *diverging, "--jobs", "2"]) == 1
    err = one_line_error()
    assert "label-noise-lasso: seed " in err and "failed: ValueError: the run diverged" in err
    assert tree(tmp_path) == before


@pytest.mark.parametrize("jobs", ["0", "-1", "many"])
def test_bad_jobs_are_one_line_exit_2(tmp_path, monkeypatch, one_line_error, jobs) -> None:
    assert main(["run", "pgd-group-lasso", "--jobs", jobs, "--out", str(tmp_path / "o")]) == 2
    assert "--jobs" in one_line_error() and not (tmp_path / "o").exists()
    if jobs != "many":  # argparse refuses a non-integer before the variable is read
        monkeypatch.setenv("NOISEREG_JOBS", jobs)
        assert main(["run", "pgd-group-lasso", "--out", str(tmp_path / "o")]) == 2
        assert "NOISEREG_JOBS must be in [1, 1024]" in one_line_error()


# ----------------------------------------------------------------------------- stopped, killed

KILLED = ["run", "label-noise-lasso", "--set", "steps=100000", "--seeds", "6", "--quiet"]
NAME = "label-noise-lasso"


def _noisereg(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "noisereg.lab", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _workers(pid: int) -> list[int]:
    """The pool's worker processes among the children of ``pid``."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children
            if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has stopped, it only waits to be reaped


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole")
    assert _noisereg(*KILLED, "--jobs", "1", "--out", str(out)).wait(timeout=300) == 0
    return out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_or_killed_parallel_run_resumes_to_the_sequential_bytes(whole, tmp_path,
                                                                          signum) -> None:
    part = tmp_path / "part"
    proc = _noisereg(*KILLED, "--jobs", "2", "--out", str(part))
    runs = part / f".{NAME}.partial" / "runs.jsonl"
    deadline = time.monotonic() + 120
    while not (runs.exists() and runs.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, "no seed finished in time"
        time.sleep(0.02)
    workers = _workers(proc.pid)
    assert len(workers) == 2
    proc.send_signal(signum)
    code = proc.wait(timeout=60)
    if signum == signal.SIGTERM:
        assert code == 130 and "--resume" in proc.stderr.read()
        assert not list(part.rglob("*.tmp"))
    deadline = time.monotonic() + 30
    while any(_running(w) for w in workers):  # stopped by the parent, or orphans stop alone
        assert time.monotonic() < deadline, "a worker outlived its parent"
        time.sleep(0.05)
    done = runs.read_text().count("\n")
    assert 1 <= done < 6 and not (part / NAME).exists()
    assert _noisereg(*KILLED, "--resume", "--jobs", "2", "--out", str(part)).wait(
        timeout=300) == 0
    _same_results(whole, part, NAME)


class _Job:
    """A cluster job as submitit returns it: done, result and cancel, not a Future."""

    def __init__(self, future) -> None:
        self.done, self.result, self.cancel = future.done, future.result, future.cancel


class _ClusterLike:
    def __init__(self, pool) -> None:
        self.pool = pool

    def submit(self, fn, *args):
        return _Job(self.pool.submit(fn, *args))


def test_an_executor_whose_jobs_only_look_like_futures(toy_registry, tmp_path, tree) -> None:
    from concurrent.futures import ThreadPoolExecutor

    runs = [(toy_registry, toy_registry.quick, [0, 1, 2], "quick")]
    sequential = run_many(runs, tmp_path / "one")
    with ThreadPoolExecutor(2) as pool:
        assert run_many(runs, tmp_path / "two", executor=_ClusterLike(pool)) == sequential
    _same_results(tmp_path / "one", tmp_path / "two", "toy")
