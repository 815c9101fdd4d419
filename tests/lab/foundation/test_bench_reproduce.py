"""The schedule behind the full preset's estimate: units handed in order to the first free
worker, checked on cases worked by hand and against every order a brute force tries."""

import itertools

import pytest

from noisereg.lab.bench.reproduce import makespan


@pytest.mark.parametrize("seconds, workers, expected", [
    ([], 2, 0.0),
    ([5.0], 3, 5.0),
    ([3.0, 1.0, 2.0], 1, 6.0),
    # w0: 3 then 2 (ends 5) then 2 (ends 7); w1: 3 then 2 (ends 5)
    ([3.0, 3.0, 2.0, 2.0, 2.0], 2, 7.0),
    # a long unit last leaves a worker idle: w0: 1, 1, then 10 (ends 12); w1: 1, 1 (ends 2)
    ([1.0, 1.0, 1.0, 1.0, 10.0], 2, 12.0),
    # the same units, longest first: w0: 10; w1: 1, 1, 1, 1 (ends 4)
    ([10.0, 1.0, 1.0, 1.0, 1.0], 2, 10.0),
])
def test_worked_cases(seconds, workers, expected) -> None:
    assert makespan(seconds, workers) == expected


def test_never_below_the_bounds_and_at_least_as_good_as_the_worst_order() -> None:
    units = [7.0, 3.0, 3.0, 2.0, 5.0, 1.0]
    for workers in (1, 2, 3):
        spans = [makespan(order, workers) for order in itertools.permutations(units)]
        lower = max(max(units), sum(units) / workers)
        assert min(spans) >= lower - 1e-12
        # list scheduling is within (2 - 1/m) of the optimum (Graham 1966), optimum >= lower
        assert max(spans) <= (2 - 1 / workers) * min(spans) + 1e-12
    assert makespan(units, 1) == sum(units)


def test_workers_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="workers must be >= 1"):
        makespan([1.0], 0)
