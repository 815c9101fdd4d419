"""`noisereg report` on hostile results files: wrongly typed fields are refused with the file
named, nothing outside the results folder is embedded, result text is escaped, and a summary
that does not match its folder's config and runs is never presented."""

import json
import shutil
from pathlib import Path

import pytest

from noisereg.lab.cli import main


def _edit(path: Path, change) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def _set(*keys, value):
    def change(summary):
        target = summary
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


WRONG = [
    (_set("plots", value="curve.png"), "plots (a list of file names)"),
    (_set("plots", value=[1]), "plots (a list of file names)"),
    (_set("seeds", value=[True, 1, 2]), "seeds (distinct integers)"),
    (_set("seeds", value=["0", "1", "2"]), "seeds (distinct integers)"),
    (_set("seeds", value=[0, 0, 1]), "seeds (distinct integers)"),
    (_set("experiment", value=["toy"]), "wrongly typed experiment"),
    (_set("paper", value=None), "wrongly typed paper"),
    (_set("config", value=[1]), "config (an object)"),
    (_set("claims", value={"a": 1}), "claims (a list)"),
    (_set("claims", 0, "measured", value="0.1"), "claim 0: wrongly typed measured"),
    (_set("claims", 0, "interval", value=[0, 1, 2]), "claim 0: wrongly typed interval"),
    (_set("claims", 1, "seeds", value="3"), "claim 1: wrongly typed seeds"),
    (_set("claims", 1, "source", value="gossip"), "claim 1: wrongly typed source"),
    (_set("claims", 2, "statement", value={"html": "<b>"}), "claim 2: wrongly typed statement"),
    (_set("claims", 0, value="reproduced"), "claim 0 is not a JSON object"),
    (_set("runs", 1, "metrics", value=[0.5]), "run 1: metrics must be a non-empty JSON object"),
    (_set("runs", 1, "metrics", value={}), "run 1: metrics must be a non-empty JSON object"),
    (_set("runs", 0, "seed", value=True), "run 0: seed must be an integer >= 0, got True"),
    (_set("runs", value=[]), "the runs do not follow the seeds"),
]


@pytest.mark.parametrize(("change", "message"), WRONG)
def test_wrongly_typed_summary_fields_are_refused_naming_the_file(finished, change, message,
                                                                  one_line_error) -> None:
    summary = finished / "toy" / "summary.json"
    _edit(summary, change)
    assert main(["report", str(finished)]) == 1
    err = one_line_error()
    assert f"{summary}: corrupted results file: " in err and message in err


def test_a_plot_outside_the_folder_is_never_embedded(finished, one_line_error) -> None:
    summary = finished / "toy" / "summary.json"
    for plot in ("../../../../../../etc/hostname", "/etc/hostname", "../report.md"):
        _edit(summary, _set("plots", value=[plot]))
        assert main(["report", str(finished)]) == 1
        assert f"plot {plot!r} is not a file inside the experiment's folder" in one_line_error()
    assert "hostname" not in (finished / "report.html").read_text()


def test_raw_html_in_result_fields_is_escaped(finished) -> None:
    script = "<script>alert(1)</script>"
    _edit(finished / "toy" / "summary.json", lambda s: (
        s.update(paper=script, claim=f"| {script} |"), s["claims"][0].update(note=script)))
    assert main(["report", str(finished)]) == 0
    for name in ("report.md", "report.html"):
        text = (finished / name).read_text()
        assert script not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_a_summary_of_another_config_than_the_runs_is_never_presented(finished, toy_registry,
                                                                      tmp_path,
                                                                      one_line_error) -> None:
    other = tmp_path / "other"
    assert main(["run", "toy", "--set", "scale=2", "--out", str(other)]) == 0
    folder = finished / "toy"
    for name in ("config.json", "runs.jsonl"):  # what two unlocked writers used to leave
        shutil.copy(other / "toy" / name, folder / name)
    assert main(["report", str(finished)]) == 1
    assert f"{folder / 'summary.json'}: the summary's config" in one_line_error()
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "config.json").write_text(json.dumps({k: summary[k] for k in (
        "experiment", "preset", "config", "config_hash", "seeds")}))
    assert main(["report", str(finished)]) == 1  # the runs still belong to scale=2
    assert "seed 0 of the summary does not match" in one_line_error()
