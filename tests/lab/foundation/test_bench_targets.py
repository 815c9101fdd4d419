"""A speed target reads its goal as a claim does: one table of comparisons for both."""

from __future__ import annotations

import math

import pytest

from noisereg.lab.bench import Target
from noisereg.lab.experiments.claims import ClaimSpec


def target(op: str, threshold: float = 1.5) -> Target:
    return Target("t", "a ratio", op, threshold, "x", lambda: 1.0)


@pytest.mark.parametrize(("op", "measured", "passed"), [
    ("<=", 1.5, True), ("<", 1.5, False), (">=", 1.5, True), (">", 1.5, False),
    ("<=", 1.4, True), (">", 1.6, True), ("<=", math.nan, False), (">=", math.inf, False),
])
def test_check_compares_and_never_passes_a_non_finite_measurement(op, measured, passed) -> None:
    row = target(op).check(measured)
    assert row["passed"] is passed and row["expected"] == f"{op} 1.5"


def test_target_and_claim_refuse_the_same_unknown_op() -> None:
    with pytest.raises(ValueError, match=r"op must be one of <, <=, >, >=; got '=='") as bench:
        target("==")
    with pytest.raises(ValueError) as claim:
        ClaimSpec("c", "sanity", "s", "==", 1.0, "b")
    assert str(bench.value) == str(claim.value)


def test_write_measures_again_and_keeps_the_notes(tmp_path) -> None:
    from noisereg.lab.bench import NOTES, main

    path = tmp_path / "BENCHMARKS.md"
    target = Target("constant", "a measurement of 2", "<=", 3.0, "x", lambda: 2.0)
    assert main([target], write=path, scaling_plot=False) == 0
    assert NOTES not in path.read_text() and "| constant | a measurement of 2 | 2 x |" in (
        path.read_text())
    notes = f"\n{NOTES}\n\nMeasured by hand: 1.5x.\n"
    path.write_text(path.read_text().replace("2 x", "9 x") + notes)
    assert main([target], write=path, scaling_plot=False) == 0
    text = path.read_text()
    assert text.endswith(notes) and text.count(NOTES) == 1 and "9 x" not in text
