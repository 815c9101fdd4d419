import argparse
import dataclasses
import errno
import json
import os
from pathlib import Path

import pytest

from noisereg.lab import cli
from noisereg.lab.cli import main
from noisereg.lab.experiments import registry


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_list_names_every_experiment(toy_registry, capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "toy" in out and "nobody 2024" in out and "means are means" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nope"], "unknown experiment 'nope'; valid: toy"),
        (["run", "toy", "--set", "bogus=1"], "unknown config key 'bogus'"),
        (["run", "toy", "--set", "n=many"], "n must be of type int"),
        (["run", "toy", "--set", "n=-3"], "n must be in"),
        (["run", "toy", "--seeds", "0"], "--seeds must be in [1, 1000], got 0"),
        (["run", "toy", "--seeds", "1000000000"], "--seeds must be in [1, 1000]"),
        (["run", "toy", "--quick", "--full"], "not allowed with argument"),
        (["reproduce", "--only", "toy", "nope"], "unknown experiment 'nope'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(toy_registry, capsys, tmp_path, argv,
                                                      message) -> None:
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)] if argv[0] != "frobnicate" else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("noisereg: error:")
    assert not out.exists()


def test_run_prints_claims_and_json_summary(toy_registry, capsys, tmp_path) -> None:
    assert main(["run", "toy", "--seeds", "2", "--out", str(tmp_path)]) == 0
    assert "reproduced" in capsys.readouterr().out
    assert main(["run", "toy", "--set", "scale=4", "--json", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["scale"] == 4.0 and summary["seeds"] == [0, 1, 2]
    assert summary["preset"] == "quick+overrides"
    claim = summary["claims"][0]
    assert {"name", "source", "statement", "basis", "measured", "interval", "seeds", "expected",
            "verdict"} <= set(claim)
    # The sample mean of 500 uniforms over the scale is within 0.05 of 1/2 (about 4 sigma).
    assert claim["verdict"] == "reproduced" and claim["measured"] < 0.05
    assert claim["source"] == "derived" and claim["seeds"] == 3


def test_reproduce_writes_everything_and_is_deterministic(toy_registry, tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["reproduce", "--quick", "--out", str(a)]) == 0
    assert main(["reproduce", "--quick", "--out", str(b)]) == 0
    for name in ("config.json", "runs.jsonl", "summary.json", "curve.png"):
        assert (a / "toy" / name).is_file()
    assert (a / "toy" / "summary.json").read_bytes() == (b / "toy" / "summary.json").read_bytes()
    md = (a / "report.md").read_text()
    assert md.splitlines()[2] == ("**1 of 1 paper claims reproduced, 0 inconclusive, "
                                  "0 not reproduced.**  ")
    row = next(line for line in md.splitlines() if "| above 0.4" in line or "above 0.4 |" in line)
    assert row.startswith("| toy | paper (nobody 2024) | the sample mean over scale is above 0.4 |")
    assert row.endswith("| 3 | &gt; 0.4 | reproduced |") and "![curve.png](toy/curve.png)" in md
    assert "data:image/png;base64," in (a / "report.html").read_text()
    assert len((a / "toy" / "runs.jsonl").read_text().splitlines()) == 3


def _with_run(monkeypatch, exp, run) -> None:
    """Let the registry's toy experiment run ``run`` instead of its own function."""
    monkeypatch.setattr(registry, "experiments", lambda: {"toy": dataclasses.replace(exp, run=run)})


def test_interrupted_reproduce_resumes_to_the_same_results(toy_registry, tmp_path, monkeypatch,
                                                           capsys) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["reproduce", "--out", str(full)]) == 0
    calls: list[int] = []

    def interrupted_at_seed_2(config, seed):
        if seed == 2:
            raise KeyboardInterrupt
        return toy_registry.run(config, seed)

    _with_run(monkeypatch, toy_registry, interrupted_at_seed_2)
    assert main(["reproduce", "--out", str(part)]) == 130
    assert "--resume" in capsys.readouterr().err
    assert not (part / "toy").exists()  # nothing finished: no results yet
    assert len((part / ".toy.partial" / "runs.jsonl").read_text().splitlines()) == 2
    assert not list(part.rglob("*.tmp"))

    _with_run(monkeypatch, toy_registry, lambda c, s: calls.append(s) or toy_registry.run(c, s))
    assert main(["reproduce", "--resume", "--out", str(part)]) == 0
    assert calls == [2]  # seeds 0 and 1 were kept, only seed 2 ran
    summary = "toy/summary.json"
    assert (part / summary).read_bytes() == (full / summary).read_bytes()


def test_resume_ignores_runs_of_another_config(toy_registry, tmp_path, capsys) -> None:
    assert main(["run", "toy", "--seeds", "1", "--set", "scale=2", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["run", "toy", "--seeds", "1", "--resume", "--json", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["scale"] == 1.0
    assert summary["runs"][0]["metrics"]["mean"] < 0.6  # scale 1, not the stored scale 2 run


def test_resume_reruns_runs_of_an_older_version(toy_registry, tmp_path, monkeypatch,
                                                capsys) -> None:
    # A new version of run() (other draws, another metrics layout) under an unchanged config:
    # the stored runs are run again, so a summary never mixes the two.
    assert main(["run", "toy", "--seeds", "1", "--out", str(tmp_path)]) == 0
    calls = []
    newer = dataclasses.replace(toy_registry, version=toy_registry.version + 1,
                                run=lambda config, seed: calls.append(seed) or toy_registry.run(
                                    config, seed))
    monkeypatch.setattr(registry, "experiments", lambda: {"toy": newer})
    capsys.readouterr()
    assert main(["run", "toy", "--seeds", "1", "--resume", "--json", "--out", str(tmp_path)]) == 0
    assert calls == [0]
    summary = json.loads(capsys.readouterr().out)
    assert summary["config_hash"].endswith(f"-v{newer.version}")


def test_report_rebuilds_and_refuses_corrupted_files(toy_registry, tmp_path, capsys) -> None:
    assert main(["reproduce", "--out", str(tmp_path)]) == 0
    (tmp_path / "report.md").unlink()
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").is_file()
    summary = tmp_path / "toy" / "summary.json"
    summary.write_text(summary.read_text()[:-40])
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(summary) in err and "corrupted" in err
    assert main(["report", str(tmp_path / "nothing")]) == 1


def test_unknown_benchmark_is_one_line_exit_2(capsys) -> None:
    assert main(["bench", "--only", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown benchmark 'nope'; valid:" in err
    assert "reproduce-quick" in err


def test_every_option_has_help_and_shows_its_default() -> None:
    parser = cli._build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        assert all(a.help for a in sub._actions), name
        options = [a for a in sub._actions if a.option_strings and a.dest != "help"]
        text = " ".join(sub.format_help().split())
        assert text.count("(default: ") == len(options), name


def test_an_out_that_cannot_hold_results_is_bad_input(toy_registry, tmp_path,
                                                      one_line_error) -> None:
    afile = tmp_path / "file"
    afile.write_text("keep")
    for out, message in [(afile, "not a directory"), (afile / "sub", "Not a directory"),
                         (Path("/sys/noisereg-results"), "cannot create the results folder"),
                         (tmp_path / ("x" * 300), "File name too long")]:
        assert main(["run", "toy", "--out", str(out)]) == 2
        assert message in one_line_error()
    assert main(["report", str(afile)]) == 1
    assert "no such results directory" in one_line_error()
    assert afile.read_text() == "keep" and list(tmp_path.iterdir()) == [afile]


def test_a_full_disk_fails_with_one_line_and_keeps_the_results(finished, tree, monkeypatch,
                                                                one_line_error) -> None:
    before = tree(finished / "toy")

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    assert main(["run", "toy", "--set", "scale=2", "--out", str(finished)]) == 1
    err = one_line_error()
    assert "No space left on device: " in err and "runs.jsonl" in err
    monkeypatch.undo()
    assert tree(finished / "toy") == before and not list(finished.rglob("*.tmp"))


def test_a_run_record_with_seed_true_is_refused_not_taken_for_seed_1(finished, toy_registry,
                                                                     monkeypatch, capsys,
                                                                     one_line_error) -> None:
    def interrupted_at_seed_2(config, seed):
        if seed == 2:
            raise KeyboardInterrupt
        return toy_registry.run(config, seed)

    _with_run(monkeypatch, toy_registry, interrupted_at_seed_2)
    args = ["run", "toy", "--set", "scale=2", "--out", str(finished)]
    assert main(args) == 130
    capsys.readouterr()
    runs = finished / ".toy.partial" / "runs.jsonl"
    first = json.loads(runs.read_text().splitlines()[0])
    forged = {**first, "seed": True, "metrics": {**first["metrics"], "mean": 99.0}}
    runs.write_text(runs.read_text() + json.dumps(forged) + "\n")
    assert main([*args, "--resume"]) == 1
    assert f"{runs}: corrupted results file: line 3: seed must be an integer >= 0, got True" \
        in one_line_error()


def test_unreadable_results_files_are_named_in_one_line(finished, one_line_error) -> None:
    summary, runs = finished / "toy" / "summary.json", finished / "toy" / "runs.jsonl"
    good_summary, good_runs = summary.read_bytes(), runs.read_bytes()
    cases = [(runs, good_runs[:-30] + b"\xff\xfe\n", "not UTF-8"),
             (runs, good_runs.replace(b'"metrics": {', b'"metrics": {}, "x": {', 1),
              "metrics must be a non-empty JSON object"),
             (summary, b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
             (summary, b"\xc3\x28", "not UTF-8")]
    for path, data, message in cases:
        path.write_bytes(data)
        for argv in (["report", str(finished)], ["run", "toy", "--resume", "--out",
                                                  str(finished)]):
            assert main(argv) == 1
            err = one_line_error()
            assert f"{path}: corrupted results file" in err and message in err
        summary.write_bytes(good_summary)
        runs.write_bytes(good_runs)
    assert main(["report", str(finished)]) == 0
