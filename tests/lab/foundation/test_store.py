import json
import math
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from noisereg._atomic import atomic_write_text, dump_json, remove_stale_temps
from noisereg.lab.results.store import ResultsError, nonfinite_paths, read_runs, read_summary


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.txt"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new content")
    assert path.read_text() == "new content"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "half")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_files_get_the_mode_of_a_plain_open(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "atomic.txt", "x")
        (tmp_path / "plain.txt").write_text("x")  # what open() gives under this umask
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "atomic.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o666 & ~umask


def test_stale_temp_files_are_removed_and_nothing_else(tmp_path: Path) -> None:
    stale = [".runs.jsonl.k2j4_8xa.tmp", ".summary.json.abcdefgh.tmp", ".a.png.0123abcd.tmp"]
    kept = ["runs.jsonl", "notes.tmp", ".hidden.tmp", ".x.short.tmp", "a.png"]
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    assert sorted(p.name for p in remove_stale_temps(tmp_path)) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_nonfinite_paths_name_each_metric_once() -> None:
    metrics = {"ok": 1.0, "loss": math.nan, "curve": [0.1, math.inf, math.nan],
               "nested": {"a": np.array([1.0, -np.inf]), "b": torch.tensor([1.0, 2.0])},
               "runs": [{"x": 1.0}, {"x": np.float64("nan")}], "n": 3, "name": "ok"}
    assert nonfinite_paths(metrics) == ["loss", "curve", "nested/a", "runs/1/x"]
    assert nonfinite_paths({"a": [1, 2], "b": "nan"}) == []


GOOD = {"experiment": "x", "config_hash": "h", "seed": 0, "metrics": {"m": 1.0}}


def _runs(path: Path, *records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_corrupted_runs_file_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{\"experiment\": \n")
    with pytest.raises(ResultsError, match=r"runs\.jsonl.*line 2"):
        read_runs(path)
    _runs(path, {"seed": 0})
    with pytest.raises(ResultsError, match="lacks experiment, config_hash, metrics"):
        read_runs(path)


@pytest.mark.parametrize(("record", "message"), [
    ({"seed": True}, "seed must be an integer >= 0, got True"),
    ({"seed": "1"}, "seed must be an integer >= 0, got '1'"),
    ({"seed": 1.0}, "seed must be an integer >= 0, got 1.0"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"seed": 7}, r"seed 7 is not one of the seeds \[0, 1\]"),
    ({"seed": 0}, "a second record of seed 0"),
    ({"metrics": {}}, "metrics must be a non-empty JSON object"),
    ({"metrics": [1.0]}, "metrics must be a non-empty JSON object"),
    ({"nonfinite": "m"}, "nonfinite must be a list of metric paths"),
    ({"experiment": "y"}, "a run of 'y', not 'x'"),
    ({"config_hash": 5}, "experiment and config_hash must be strings"),
])
def test_a_bad_run_record_is_refused_and_never_replaces_another(tmp_path, record,
                                                                 message) -> None:
    path = _runs(tmp_path / "runs.jsonl", GOOD, {**GOOD, "seed": 1, **record})
    with pytest.raises(ResultsError, match=re.escape(str(path)) + ".*line 2: " + message):
        read_runs(path, experiment="x", seeds=[0, 1])


def test_unreadable_json_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n\xff\xfe{}\n")
    with pytest.raises(ResultsError, match=re.escape(str(path)) + ": .*not UTF-8"):
        read_runs(path)
    deep = tmp_path / "summary.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ResultsError, match=re.escape(str(deep)) + ": .*nested too deeply"):
        read_summary(deep)
    with pytest.raises(ResultsError, match="not found"):
        read_summary(tmp_path / "missing.json")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ResultsError, match="cannot read"):
        read_summary(tmp_path / "dir.json")


def test_dump_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        dump_json({"x": float("nan")})
