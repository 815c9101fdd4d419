"""Results folders that survive: a failing rerun keeps the finished results, non-finite metrics
are stored and decided, one writer per folder, stale temp files and cut-short commits are
cleaned up, and the stored form is the same whether a seed ran now or was resumed."""

import dataclasses
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from noisereg.lab._plotting import plt, save
from noisereg.lab.cli import main
from noisereg.lab.experiments import registry
from noisereg.lab.results.lock import LOCK_NAME, LockedError, writer_lock
from noisereg.lab.results.store import read_summary
from noisereg.lab.runner import RunError, recover, run_experiment


def _use(monkeypatch, exp) -> None:
    monkeypatch.setattr(registry, "experiments", lambda: {exp.name: exp})


def test_a_failing_rerun_keeps_the_finished_results(finished, toy_registry, monkeypatch, tree,
                                                    one_line_error) -> None:
    before = tree(finished / "toy")

    def diverges_at_seed_1(config, seed):
        if seed == 1:
            raise ValueError("the run diverged after 6 steps")
        return toy_registry.run(config, seed)

    _use(monkeypatch, dataclasses.replace(toy_registry, run=diverges_at_seed_1))
    assert main(["run", "toy", "--set", "scale=3", "--out", str(finished)]) == 1
    err = one_line_error()
    assert "toy: seed 1 failed: ValueError: the run diverged after 6 steps" in err
    assert "unchanged (1 finished seed(s) kept for --resume)" in err
    assert tree(finished / "toy") == before
    assert main(["report", str(finished)]) == 0  # the report shows the finished run
    # The seed that finished is reused by --resume once the failure is gone.
    calls: list[int] = []
    _use(monkeypatch, dataclasses.replace(
        toy_registry, run=lambda c, s: calls.append(s) or toy_registry.run(c, s)))
    assert main(["run", "toy", "--set", "scale=3", "--resume", "--out", str(finished)]) == 0
    assert calls == [1, 2]
    assert read_summary(finished / "toy" / "summary.json")["config"]["scale"] == 3.0
    assert sorted(p.name for p in finished.iterdir()) == ["report.html", "report.md", "toy"]


def test_a_real_run_that_diverges_exits_1_and_keeps_the_folder(tmp_path, capsys, tree,
                                                               one_line_error) -> None:
    out = tmp_path / "out"
    tiny = ["--set", "n=15", "--set", "d=30", "--set", "k=3", "--seeds", "1", "--quiet"]
    assert main(["run", "label-noise-lasso", *tiny, "--set", "steps=20000", "--out",
                 str(out)]) == 0
    capsys.readouterr()
    before = tree(out)
    # Valid, gamma (k + 2 alpha^2 d) = 1.89 is below the refusal limit 2, but past the edge
    # 1/2 of linear stability: the run from alpha = 1 diverges within a few steps.
    args = [*tiny, "--set", "init_scales=0.01,1", "--set", "step_size=0.03"]
    assert main(["run", "label-noise-lasso", *args, "--out", str(out)]) == 1
    err = one_line_error()
    assert "label-noise-lasso: seed 0 failed: ValueError: the run diverged after" in err
    assert tree(out) == before


def test_nonfinite_metrics_are_null_flagged_and_fail_their_claims(toy_registry, tmp_path,
                                                                  monkeypatch, tree) -> None:
    def diverged_seed_1(config, seed):
        metrics = toy_registry.run(config, seed)
        if seed == 1:
            metrics["mean"], metrics["curve"][2] = math.nan, math.inf
        return metrics

    _use(monkeypatch, dataclasses.replace(toy_registry, run=diverged_seed_1))
    out = tmp_path / "out"
    assert main(["reproduce", "--out", str(out)]) == 0
    summary = read_summary(out / "toy" / "summary.json")
    run1 = summary["runs"][1]
    assert run1["metrics"]["mean"] is None and run1["metrics"]["curve"][2] is None
    assert run1["nonfinite"] == ["curve", "mean"] and "nonfinite" not in summary["runs"][0]
    for claim in summary["claims"]:
        assert claim["outcome"] == "fails" and "diverged) on seed(s) [1]" in claim["note"]
    assert "fail" in (out / "report.md").read_text()
    first = tree(out / "toy")
    assert main(["reproduce", "--resume", "--out", str(out)]) == 0
    assert tree(out / "toy") == first


def test_a_plot_that_cannot_draw_a_diverged_seed_is_skipped(toy_registry, tmp_path) -> None:
    def log_plot(summary, outdir):
        fig, ax = plt.subplots(figsize=(2, 2))
        mean = np.full(2, summary["runs"][0]["metrics"]["mean"])
        ax.plot([2, 4], mean)
        ax.fill_between([2, 4], mean - 1, mean + 1)
        ax.set_xscale("log")
        return [save(fig, outdir, "log.png")]  # a NaN band on a log axis: matplotlib raises

    exp = dataclasses.replace(toy_registry, plot=log_plot,
                              run=lambda config, seed: {"mean": math.nan, "curve": [1.0]})
    summary = run_experiment(exp, exp.quick, [0, 1], tmp_path, preset="quick")
    assert summary["plots"] == [] and all(c["outcome"] == "fails" for c in summary["claims"])
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == [
        "config.json", "runs.jsonl", "summary.json"]
    with pytest.raises(ValueError, match="cannot be log-scaled"):  # what the runner caught
        log_plot({"runs": [{"metrics": {"mean": math.nan}}]}, tmp_path)
    broken = dataclasses.replace(toy_registry, plot=lambda summary, outdir: 1 / 0)
    with pytest.raises(RunError, match="plotting failed: ZeroDivisionError"):
        run_experiment(broken, exp.quick, [0], tmp_path, preset="quick")  # no diverged seed


def test_resumed_seeds_give_the_plot_of_a_fresh_run(toy_registry, tmp_path, monkeypatch) -> None:
    """A plot drawn in the order of a metrics dict: resumed records (stored with sorted keys)
    and fresh ones must give the same picture."""
    def run(config, seed):
        rng = np.random.default_rng(seed)
        return {"zeta": rng.random(4), "alpha": rng.random(4), "mean": 0.5}

    def plot(summary, outdir):
        fig, ax = plt.subplots(figsize=(2, 2))
        for i, (_, values) in enumerate(summary["runs"][0]["metrics"].items()):
            if isinstance(values, list):
                ax.plot(values, color=f"C{i}")
        return [save(fig, outdir, "order.png")]

    exp = dataclasses.replace(toy_registry, run=run, plot=plot)
    config = exp.quick
    fresh = run_experiment(exp, config, [0, 1], tmp_path / "fresh", preset="quick")
    run_experiment(exp, config, [0], tmp_path / "resumed", preset="quick")
    resumed = run_experiment(exp, config, [0, 1], tmp_path / "resumed", preset="quick",
                             resume=True)
    assert resumed == fresh
    png = Path("toy") / "order.png"
    assert (tmp_path / "resumed" / png).read_bytes() == (tmp_path / "fresh" / png).read_bytes()


def test_resumed_pgd_nuclear_redraws_the_fresh_plots(tmp_path, tree) -> None:
    args = ["run", "pgd-nuclear", "--set", "steps=100", "--quiet"]
    assert main([*args, "--seeds", "2", "--out", str(tmp_path / "fresh")]) == 0
    assert main([*args, "--seeds", "1", "--out", str(tmp_path / "resumed")]) == 0
    assert main([*args, "--seeds", "2", "--resume", "--out", str(tmp_path / "resumed")]) == 0
    fresh, resumed = tree(tmp_path / "fresh"), tree(tmp_path / "resumed")
    pngs = [name for name in fresh if name.endswith(".png")]
    assert pngs and all(fresh[name] == resumed[name] for name in pngs)
    assert fresh["pgd-nuclear/summary.json"] == resumed["pgd-nuclear/summary.json"]


# ----------------------------------------------------------------------------- one writer

HOLDER = textwrap.dedent("""
    import sys, time
    from noisereg.lab.results.lock import writer_lock
    with writer_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
""")


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "locked\n"
    return proc


def test_a_second_writer_exits_2_and_a_dead_writers_lock_is_taken_over(finished, tree,
                                                                       one_line_error) -> None:
    before = tree(finished)
    proc = _holder(finished)
    try:
        assert main(["run", "toy", "--set", "scale=2", "--out", str(finished)]) == 2
        err = one_line_error()
        assert f"{finished}: results folder in use by pid {proc.pid} on " in err
        assert main(["report", str(finished)]) == 2
        one_line_error()
        assert {k: v for k, v in tree(finished).items() if k != LOCK_NAME} == before
    finally:
        proc.send_signal(signal.SIGKILL)  # dies holding the lock: the file stays behind
        proc.wait()
    assert (finished / LOCK_NAME).read_text().startswith(f"pid {proc.pid} on ")
    assert main(["run", "toy", "--set", "scale=2", "--out", str(finished)]) == 0
    assert not (finished / LOCK_NAME).exists()
    assert read_summary(finished / "toy" / "summary.json")["config"]["scale"] == 2.0


def test_the_lock_is_reentrant_in_one_process_and_exclusive_across(tmp_path) -> None:
    folder = tmp_path / "new"
    with writer_lock(folder), writer_lock(folder):
        assert (folder / LOCK_NAME).is_file()
    assert not folder.exists()  # created for the lock, removed with it
    with writer_lock(tmp_path):
        fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR)  # another open file description
        try:
            import fcntl

            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    proc = _holder(tmp_path)
    try:
        with pytest.raises(LockedError, match=f"pid {proc.pid}"), writer_lock(tmp_path):
            pass
    finally:
        proc.kill()
        proc.wait()


# ----------------------------------------------------------------------------- leftovers


def test_temp_files_of_a_killed_writer_are_removed_on_the_next_run(finished) -> None:
    stale = [finished / ".report.md.ab12cd34.tmp", finished / "toy" / ".runs.jsonl.x1y2z3w4.tmp",
             finished / ".toy.partial" / ".runs.jsonl.0a1b2c3d.tmp"]
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_text("half")
    assert main(["run", "toy", "--resume", "--out", str(finished)]) == 0
    assert not any(path.exists() for path in stale)
    assert not (finished / ".toy.partial").exists()


def test_a_commit_cut_short_is_completed_before_anything_else(finished, toy_registry,
                                                              tmp_path, tree) -> None:
    new = tmp_path / "new"
    run_experiment(toy_registry, dataclasses.replace(toy_registry.quick, scale=2.0), [0, 1],
                   new, preset="quick")
    # A writer killed after moving config.json and runs.jsonl, before the summary.
    partial = finished / ".toy.partial"
    partial.mkdir()
    for name in ("curve.png", "summary.json"):
        (partial / name).write_bytes((new / "toy" / name).read_bytes())
    for name in ("config.json", "runs.jsonl"):
        (finished / "toy" / name).write_bytes((new / "toy" / name).read_bytes())
    assert main(["report", str(finished)]) == 0  # recovers first, then reads a whole run
    assert tree(finished / "toy") == tree(new / "toy")
    assert not partial.exists()
    with writer_lock(finished):
        recover(finished)  # nothing left to do
    assert tree(finished / "toy") == tree(new / "toy")


def test_a_plot_outside_its_folder_is_refused_before_moving_anything(finished, toy_registry,
                                                                     tree) -> None:
    before = tree(finished / "toy")
    for bad in (["../escape.png"], ["/etc/hostname"], [3], "curve.png"):
        exp = dataclasses.replace(toy_registry, plot=lambda summary, outdir, bad=bad: bad)
        with pytest.raises(RunError, match="plotting failed"):
            run_experiment(exp, exp.quick, [0], finished, preset="quick")
        assert tree(finished / "toy") == before
