"""A generated matrix of bad values over every config field of every registered experiment, set
through the command line: each is refused by validation before anything runs or is written
(exit code 2, one line naming the field, the results folder untouched), or it is a value the
field legitimately takes, which is listed here with its reason and not run."""

import dataclasses
from pathlib import Path

import pytest

from noisereg.lab.cli import main
from noisereg.lab.experiments import registry
from noisereg.lab.experiments.base import ConfigError, apply_overrides

BAD = ("nan", "inf", "-inf", "1e308", "1e-320", "1000000000000", "-1", "", "abc")
# 1e-320 is a valid value where the field's range starts at 0: it acts as 0 (no label flips,
# no momentum or weight decay, a zero-std initialization or noise...), so it is not run.
ZERO_LIKE = {"sigma0", "flip", "flip_prob", "flip_probs", "working_error", "noise_scales",
             "momentum", "weight_decay", "target_noise", "noise"}
NAMES = sorted(registry.experiments())


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """A folder holding a finished real run, and its files."""
    out = tmp_path_factory.mktemp("bad-values") / "out"
    assert main(["run", "pgd-nuclear", "--set", "steps=100", "--seeds", "1", "--quiet",
                 "--out", str(out)]) == 0
    return out, _tree(out)


@pytest.mark.parametrize("name", NAMES)
def test_every_bad_value_is_refused_before_anything_runs(name, results, capsys) -> None:
    out, before = results
    exp = registry.get(name)
    refused = valid = 0
    for field in dataclasses.fields(exp.quick):
        for value in BAD:
            try:
                apply_overrides(exp.quick, [f"{field.name}={value}"])
            except ConfigError:
                pass
            else:
                assert value == "1e-320" and field.name in ZERO_LIKE, (field.name, value)
                valid += 1
                continue
            capsys.readouterr()
            assert main(["run", name, "--set", f"{field.name}={value}", "--out", str(out)]) == 2
            captured = capsys.readouterr()
            assert captured.out == "" and captured.err.count("\n") == 1, (field.name, value)
            assert captured.err.startswith("noisereg: error: ") and field.name in captured.err, \
                (field.name, value, captured.err)
            refused += 1
    assert _tree(out) == before
    print(f"{name}: {refused} refused, {valid} valid (not run)")
