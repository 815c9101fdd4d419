"""Label-noise experiments: their measurements against independent computations on exact small
cases, the derivation behind a threshold, config validation (end-to-end runs:
test_pipeline.py)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from noisereg.dln import sparse_regression
from noisereg.lab.experiments import _label_noise as measure
from noisereg.lab.experiments import (
    label_noise_convergence,
    label_noise_lasso,
    label_noise_support,
    label_noise_vs_gd,
)
from noisereg.lab.experiments.base import seed_values

MODULES = {m.EXPERIMENT.name: m for m in (label_noise_lasso, label_noise_support,
                                          label_noise_vs_gd, label_noise_convergence)}


def test_loglog_slope_recovers_a_power_law_and_matches_linregress() -> None:
    x = np.geomspace(0.1, 1e4, 17)
    assert measure.loglog_slope(x, 3.0 * x**-0.5) == pytest.approx(-0.5, abs=1e-12)
    y = np.random.default_rng(0).uniform(0.1, 2.0, size=x.size)
    expected = stats.linregress(np.log(x), np.log(y)).slope
    assert measure.loglog_slope(x, y) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="two distinct x"):
        measure.loglog_slope([2.0, 2.0], [1.0, 3.0])


def test_tail_slope_sees_only_the_last_decades() -> None:
    # t^-2 up to t = 100, then a continuous t^-0.5 branch: the last two decades are t^-0.5.
    t = np.geomspace(1.0, 1e4, 41)  # 10 records per decade, t = 100 among them
    y = np.where(t <= 100, t**-2.0, 100**-1.5 * t**-0.5)
    assert measure.tail_slope(t, y, 2.0) == pytest.approx(-0.5, abs=1e-12)
    assert measure.tail_slope(t, y, 4.0) == pytest.approx(
        stats.linregress(np.log(t), np.log(y)).slope, rel=1e-12)


def _settling_by_loop(times, ok) -> float:
    """Walk the records: the last switch from failing to holding, if it holds at the end."""
    answer = math.inf
    for k, good in enumerate(ok):
        if good and (k == 0 or not ok[k - 1]):
            answer = times[k]
        if not good:
            answer = math.inf
    return answer


@pytest.mark.parametrize("length", [1, 2, 3, 5])
def test_settling_time_on_every_short_sequence(length) -> None:
    times = np.arange(1.0, length + 1) * 10
    for ok in itertools.product([False, True], repeat=length):
        assert measure.settling_time(times, ok) == _settling_by_loop(times, ok), ok


def test_support_recovery_time_of_an_exponential_decay() -> None:
    # Off the support beta_j(t) = e^{-t} (and e^{-2t}), on it a constant: |beta_j| > tol fails
    # for the off-support coordinates from t > ln(1 / tol) on, so the support is recovered at
    # the first record past ln(1 / tol).
    times = np.linspace(0.0, 20.0, 81)
    averages = np.stack([np.full_like(times, 0.5), np.exp(-times), -np.exp(-2 * times)], axis=1)
    true = np.array([True, False, False])
    errors = [measure.support_errors(a, true, 1e-3) for a in averages]
    assert errors[0] == 2 and errors[-1] == 0
    expected = times[times > math.log(1e3)][0]
    assert measure.settling_time(times, np.equal(errors, 0)) == expected


def test_support_errors_and_off_support_share_by_hand() -> None:
    beta = np.array([1.0, -0.5, 0.25, 0.0, -0.25, 1e-9])
    true = np.array([True, True, False, False, True, False])
    # In: {0, 1, 2, 4}; true: {0, 1, 4}: coordinate 2 is wrongly in.
    assert measure.support_errors(beta, true, 1e-6) == 1
    assert measure.off_support_share(beta, true) == pytest.approx((0.25 + 1e-9) / (2.0 + 1e-9))


def test_seed_values_reads_nested_metrics_and_nulls() -> None:
    summary = {"runs": [{"metrics": {"a": [{"b": [1.0, None]}]}},
                        {"metrics": {"a": [{"b": [3.0, 4.0]}]}}]}
    values = seed_values(summary, "a", 0, "b")
    assert values.shape == (2, 2) and np.isnan(values[0, 1])
    np.testing.assert_array_equal(values[1], [3.0, 4.0])


def test_threshold_basis_minimum_norm_share_formula() -> None:
    """gd-large-alpha-not-sparse: the off-support l1 share of the minimum-l2 interpolator on a
    Gaussian design is about r / (1 + r), r = (d - k) sqrt(2/pi) sqrt((d - n) / (n d))
    ||beta*||_2 / ||beta*||_1 (the derivation the claim's basis states)."""
    n, d, magnitudes = 50, 100, np.array([1.0, 0.6, 0.3])
    k = len(magnitudes)
    r = (d - k) * math.sqrt(2 / math.pi) * math.sqrt((d - n) / (n * d)) \
        * np.linalg.norm(magnitudes) / magnitudes.sum()
    shares = []
    for seed in range(8):
        X, y, beta_star = sparse_regression(n, d, k, seed=seed, magnitudes=magnitudes)
        minimum_norm = X.T @ np.linalg.solve(X @ X.T, y)
        shares.append(measure.off_support_share(minimum_norm, beta_star != 0))
    assert np.mean(shares) == pytest.approx(r / (1 + r), abs=0.03)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("label-noise-lasso", {"init_scales": (0.1,)}, "init_scales"),
        ("label-noise-lasso", {"step_size": 0.0}, "step_size"),
        ("label-noise-vs-gd", {"init_scales": (1.0, 0.1)}, "init_scales"),
        ("label-noise-support", {"max_irrepresentable": 1.5}, "max_irrepresentable"),
        ("label-noise-support", {"sweep_deltas": (2.0,)}, "sweep_deltas"),
        ("label-noise-convergence", {"lambdas": (0.04,)}, "lambdas"),
        ("label-noise-convergence", {"lambdas": (0.04, 0.02)}, "lambdas"),
        ("label-noise-convergence", {"bias_step_sizes": (0.01, 0.01)}, "bias_step_sizes"),
        ("label-noise-convergence", {"horizon": 0.01}, "horizon"),
        ("label-noise-convergence", {"fit_decades": 0.1}, "fit_decades"),
        ("label-noise-convergence", {"support_tol": 0.5}, "support_tol"),
        ("label-noise-convergence", {"trace_points": 5}, "trace_points"),
        ("label-noise-convergence", {"max_irrepresentable": 1.2}, "max_irrepresentable"),
    ],
)
def test_configs_validate_their_fields(name, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(MODULES[name].EXPERIMENT.quick, **change)
