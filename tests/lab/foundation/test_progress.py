"""The time left of a run of units, on a fake clock: exact for equal units, the mean rate so
far for unequal ones; a reproduce prints the units done with each experiment's verdicts."""

import pytest

from noisereg.lab._progress import Eta
from noisereg.lab.cli import main


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_equal_units_in_turn_give_the_exact_time_left() -> None:
    clock = Clock()
    eta = Eta(6, clock=clock)
    assert eta.left() is None and str(eta) == "0/6 units"
    for done in range(1, 7):
        clock.now += 40.0  # every unit takes 40 s
        eta.update()
        assert eta.left() == pytest.approx(40.0 * (6 - done))
    assert str(eta) == "6/6 units"


def test_equal_units_on_two_workers_finish_in_pairs() -> None:
    clock = Clock()
    eta = Eta(8, clock=clock)
    for pair in range(1, 4):
        clock.now += 30.0  # two 30 s units end together
        eta.update(2)
        assert eta.left() == pytest.approx(30.0 * (4 - pair))  # the rounds left


def test_unequal_units_give_the_mean_rate_so_far() -> None:
    clock = Clock()
    eta = Eta(10, clock=clock)
    clock.now += 5.0
    eta.update()
    clock.now += 115.0
    eta.update()  # 2 units in 120 s: 60 s each, 8 left
    assert eta.left() == pytest.approx(480.0) and str(eta) == "2/10 units, ~8 min left"
    clock.now += 2 * 3600.0
    eta.update(3)  # 5 units in 7320 s
    assert str(eta) == "5/10 units, ~2.0 h left"


@pytest.mark.parametrize("total, units", [(-1, 0), (1.5, 0), (True, 0), (3, 4), (3, -1)])
def test_bad_counts_are_refused(total, units) -> None:
    with pytest.raises(ValueError, match=r"^(total|units) must be"):
        Eta(total).update(units)


def test_reproduce_prints_the_units_done_per_experiment(toy_registry, tmp_path,
                                                             capsys) -> None:
    assert main(["reproduce", "--jobs", "1", "--out", str(tmp_path)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line == "toy: 1 pass, 2 reproduced (3/3 units)"
