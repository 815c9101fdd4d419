"""The Lasso oracle against scikit-learn and the KKT conditions; the irrepresentable constant on
hand-made designs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Lasso

from noisereg.theory import (
    column_weights,
    irrepresentable_constant,
    label_noise_lasso_penalty,
    lasso,
)


def _design(n: int = 30, d: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, size=d)  # unequal column norms
    beta = np.zeros(d)
    beta[:4] = (1.5, -1.0, 0.7, 2.0)
    return X, X @ beta + 0.1 * rng.standard_normal(n)


def _kkt_violation(X, y, beta, penalties, positive=False) -> float:
    """Largest violation of 0 in grad + penalties * subdifferential(|beta|) (+ normal cone)."""
    grad = X.T @ (X @ beta - y) / X.shape[0]
    on = beta != 0
    worst = np.abs(grad[on] + penalties[on] * np.sign(beta[on]))
    if positive:  # beta_j = 0 needs grad_j >= -penalty_j
        off = np.maximum(0.0, -grad[~on] - penalties[~on])
    else:
        off = np.maximum(0.0, np.abs(grad[~on]) - penalties[~on])
    return float(np.max(np.concatenate([worst, off])))


def test_unweighted_lasso_equals_scikit_learn() -> None:
    X, y = _design()
    ref = Lasso(alpha=0.05, fit_intercept=False, tol=1e-14, max_iter=10**6).fit(X, y).coef_
    np.testing.assert_allclose(lasso(X, y, 0.05), ref, atol=1e-9)


@pytest.mark.parametrize("positive", [False, True])
def test_weighted_lasso_satisfies_the_kkt_conditions(positive) -> None:
    X, y = _design()
    weights = np.random.default_rng(1).uniform(0.2, 3.0, size=X.shape[1])
    beta = lasso(X, y, 0.03, weights=weights, positive=positive)
    assert 0 < np.count_nonzero(beta) < X.shape[1]
    assert _kkt_violation(X, y, beta, 0.03 * weights, positive) < 1e-9
    if positive:
        assert beta.min() >= 0


def test_penalty_is_gamma_delta_squared_over_batch_and_column_weighted() -> None:
    assert label_noise_lasso_penalty(0.01, 2.0) == pytest.approx(0.04)
    assert label_noise_lasso_penalty(0.02, 3.0, batch_size=4) == pytest.approx(0.045)
    X = np.array([[1.0, 2.0], [3.0, 0.0]])  # ||X_j||^2 / n = 5 and 2
    np.testing.assert_allclose(column_weights(X), [5.0, 2.0])
    np.testing.assert_allclose(label_noise_lasso_penalty(0.1, 1.0, X=X), [0.5, 0.2])


def test_irrepresentable_constant_on_hand_made_designs() -> None:
    a, b = 0.3, 0.5
    # Orthonormal X_S: the constant is |X_3^T X_S sign| = |a + b| or |a - b|.
    X = np.array([[1.0, 0.0, a], [0.0, 1.0, b], [0.0, 0.0, 1.0]])
    assert irrepresentable_constant(X, [0, 1], [1, 1]) == pytest.approx(0.8)
    assert irrepresentable_constant(X, [0, 1], [1, -1]) == pytest.approx(0.2)
    # Correlated X_S = [[1, 1], [0, 1], [0, 0]]: Gram [[1, 1], [1, 2]], inverse [[2, -1], [-1, 1]];
    # X_3^T X_S = (a, a + b), so sign (1, 1) gives |a| and (1, -1) gives |3a - 2(a + b)|.
    X = np.array([[1.0, 1.0, a], [0.0, 1.0, b], [0.0, 0.0, 1.0]])
    assert irrepresentable_constant(X, [0, 1], [1, 1]) == pytest.approx(0.3)
    assert irrepresentable_constant(X, np.array([True, True, False]), [1, -1]) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda X, y: lasso(X, y, 0.0), "lam must be > 0"),
        (lambda X, y: lasso(X, y[:-1], 0.1), "y must have shape"),
        (lambda X, y: lasso(X, y, 0.1, weights=np.zeros(X.shape[1])), "weights must be"),
        (lambda X, y: label_noise_lasso_penalty(0.1, -1.0), "delta must be >= 0"),
        (lambda X, y: label_noise_lasso_penalty(0.1, 1.0, batch_size=0), "batch_size"),
        (lambda X, y: irrepresentable_constant(X, [0, 0], [1, 1]), "support must be distinct"),
        (lambda X, y: irrepresentable_constant(X, [0, 99], [1, 1]), "support must be distinct"),
        (lambda X, y: irrepresentable_constant(X, [0, 1], [1, 0.5]), "signs must be 2 values"),
    ],
)
def test_bad_input(call, message) -> None:
    X, y = _design()
    with pytest.raises(ValueError, match=message):
        call(X, y)
