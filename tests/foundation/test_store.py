import json
import os
import re
from pathlib import Path

import pytest

from noisereg.results import store
from noisereg.results.store import ResultsError, atomic_write_text, read_runs, read_summary


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


def test_corrupted_runs_file_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    good = {"experiment": "x", "config_hash": "h", "seed": 0, "metrics": {}}
    path.write_text(json.dumps(good) + "\n{\"experiment\": \n")
    with pytest.raises(ResultsError, match=r"runs\.jsonl.*line 2"):
        read_runs(path)
    path.write_text(json.dumps({"seed": 0}) + "\n")
    with pytest.raises(ResultsError, match="lacks experiment, config_hash, metrics"):
        read_runs(path)


def test_summary_validation(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text('{"experiment": "x", "paper"')
    with pytest.raises(ResultsError, match=re.escape(f"{path}: corrupted results file")):
        read_summary(path)
    summary = {k: [] for k in store.SUMMARY_KEYS}
    summary["claims"] = [{"name": "a"}]
    path.write_text(json.dumps(summary))
    with pytest.raises(ResultsError, match="claim 0 lacks source, statement"):
        read_summary(path)
    summary["claims"], summary["plots"] = [], ["gone.png"]
    path.write_text(json.dumps(summary))
    with pytest.raises(ResultsError, match=r"gone\.png"):
        read_summary(path)
    with pytest.raises(ResultsError, match="not found"):
        read_summary(tmp_path / "missing.json")


def test_dump_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        store.dump_json({"x": float("nan")})
