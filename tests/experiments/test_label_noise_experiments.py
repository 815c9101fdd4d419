"""Label-noise experiments: their measurements against independent computations on exact small
cases, the derivation behind a threshold, config validation (end-to-end runs:
test_pipeline.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from noisereg.dln import sparse_regression
from noisereg.experiments import _label_noise as measure
from noisereg.experiments import label_noise_lasso, label_noise_support, label_noise_vs_gd

MODULES = {m.EXPERIMENT.name: m for m in (label_noise_lasso, label_noise_support,
                                          label_noise_vs_gd)}


def test_support_errors_and_off_support_share_by_hand() -> None:
    beta = np.array([1.0, -0.5, 0.25, 0.0, -0.25, 1e-9])
    true = np.array([True, True, False, False, True, False])
    # In: {0, 1, 2, 4}; true: {0, 1, 4}: coordinate 2 is wrongly in.
    assert measure.support_errors(beta, true, 1e-6) == 1
    assert measure.off_support_share(beta, true) == pytest.approx((0.25 + 1e-9) / (2.0 + 1e-9))


def test_seed_values_reads_nested_metrics_and_nulls() -> None:
    summary = {"runs": [{"metrics": {"a": [{"b": [1.0, None]}]}},
                        {"metrics": {"a": [{"b": [3.0, 4.0]}]}}]}
    values = measure.seed_values(summary, "a", 0, "b")
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
    ],
)
def test_configs_validate_their_fields(name, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(MODULES[name].EXPERIMENT.quick, **change)
