"""Statistical check of the paper's claim: the time average of label-noise SGD is the Lasso
solution with lambda_j = gamma delta^2 ||X_j||^2 / (n B) (scikit-learn as the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

from noisereg.dln import label_noise_sgd, relative_error
from noisereg.theory import label_noise_lasso_penalty, lasso


def _instance(column_scales: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    n, d = 40, 100
    X = rng.standard_normal((n, d))
    X /= np.sqrt((X**2).mean(axis=0))  # ||X_j||^2 / n = 1
    if column_scales:
        X *= rng.uniform(0.6, 1.4, size=d)
    beta_star = np.zeros(d)
    beta_star[:5] = 1.0
    return X, X @ beta_star


@pytest.mark.parametrize(
    ("gamma", "delta", "batch", "alpha", "parametrization"),
    [(0.01, 2.0, 1, 0.1, "u2-v2"), (0.01, 2.0, 1, 0.5, "u2"), (0.02, 4.0, 4, 0.1, "u2-v2")],
)
def test_time_average_is_the_lasso(gamma, delta, batch, alpha, parametrization) -> None:
    X, y = _instance()
    steps = 600_000 if batch == 1 else 300_000
    result = label_noise_sgd(X, y, step_size=gamma, delta=delta, steps=steps, init_scale=alpha,
                             parametrization=parametrization, batch_size=batch, seed=0)
    lam = label_noise_lasso_penalty(gamma, delta, batch)
    positive = parametrization == "u2"
    errors = [relative_error(result.beta_avg, lasso(X, y, f * lam, positive=positive))
              for f in (1, 0.5, 2)]
    assert errors[0] < 0.02
    assert errors[0] < 0.5 * min(errors[1:])  # the constant is right, not just the order
    # the last iterate is not
    assert relative_error(result.beta_last, lasso(X, y, lam)) > 2 * errors[0]


def test_unequal_columns_give_the_column_weighted_lasso() -> None:
    X, y = _instance(column_scales=True)
    gamma, delta = 0.01, 2.0
    result = label_noise_sgd(X, y, step_size=gamma, delta=delta, steps=600_000, init_scale=0.1)
    weighted = lasso(X, y, 1.0, weights=label_noise_lasso_penalty(gamma, delta, X=X))
    unweighted = lasso(X, y, label_noise_lasso_penalty(gamma, delta))
    error = relative_error(result.beta_avg, weighted)
    assert error < 0.02
    assert error < 0.5 * relative_error(result.beta_avg, unweighted)
