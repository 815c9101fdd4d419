"""The group-Lasso oracle against cvxpy (an independent convex solver), scikit-learn's Lasso
(groups of one column), the KKT conditions, and the noise-injection weights against the
minimum over factorizations computed numerically."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from sklearn.linear_model import Lasso

from noisereg.theory.group_sparse import (
    fitted_group_lasso,
    group_lasso,
    noise_injection_group_weights,
)
from noisereg.theory.noise_injection import group_lasso_penalty

cp = pytest.importorskip("cvxpy")  # in the dev extra, installed by the test command


def _problem(n: int = 30, groups: int = 8, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, groups * k))
    beta = np.zeros(groups * k)
    beta[:k] = rng.standard_normal(k)
    if groups >= 3:
        beta[2 * k:3 * k] = rng.standard_normal(k)
    y = X @ beta + 0.1 * rng.standard_normal(n)
    blocks = [list(range(j * k, (j + 1) * k)) for j in range(groups)]
    return X, y, blocks


def _cvxpy(X, y, blocks, weights, fitted: bool) -> np.ndarray:
    b = cp.Variable(X.shape[1])
    penalty = sum(w * cp.norm(X[:, g] @ b[g] if fitted else b[g], 2)
                  for g, w in zip(blocks, weights))
    cp.Problem(cp.Minimize(cp.sum_squares(y - X @ b) / (2 * len(y)) + penalty)).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    return b.value


def _objective(X, y, blocks, weights, beta, fitted: bool) -> float:
    fit = np.sum((y - X @ beta) ** 2) / (2 * len(y))
    return fit + sum(w * np.linalg.norm(X[:, g] @ beta[g] if fitted else beta[g])
                     for g, w in zip(blocks, weights))


@pytest.mark.parametrize("fitted", [False, True])
def test_matches_cvxpy(fitted: bool) -> None:
    X, y, blocks = _problem()
    weights = np.linspace(0.05, 0.3, len(blocks)) / (np.sqrt(len(y)) if fitted else 1.0)
    solve = fitted_group_lasso if fitted else group_lasso
    ours = solve(X, y, blocks, weights)
    ref = _cvxpy(X, y, blocks, weights, fitted)
    # Both minimise the same strictly convex objective: equal values, nearly equal points.
    assert _objective(X, y, blocks, weights, ours, fitted) <= \
        _objective(X, y, blocks, weights, ref, fitted) + 1e-9
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    zero = [j for j, g in enumerate(blocks) if np.linalg.norm(ours[g]) == 0.0]
    assert zero and all(np.linalg.norm(ref[blocks[j]]) < 1e-6 for j in zero)


def test_single_columns_are_the_lasso() -> None:
    X, y, _ = _problem(n=40, groups=30, k=1, seed=1)
    ours = group_lasso(X, y, [[j] for j in range(30)], np.full(30, 0.1))
    ref = Lasso(alpha=0.1, fit_intercept=False, tol=1e-14, max_iter=1_000_000).fit(X, y).coef_
    np.testing.assert_allclose(ours, ref, atol=1e-7)


def test_kkt_conditions() -> None:
    X, y, blocks = _problem(seed=2)
    weights = np.full(len(blocks), 0.2)
    beta = group_lasso(X, y, blocks, weights)
    grad = X.T @ (y - X @ beta) / len(y)  # minus the gradient of the fit
    for g, w in zip(blocks, weights):
        norm = np.linalg.norm(beta[g])
        if norm > 0:
            np.testing.assert_allclose(grad[g], w * beta[g] / norm, atol=1e-8)
        else:
            assert np.linalg.norm(grad[g]) <= w + 1e-8


def test_weights_are_the_minimum_over_factorizations() -> None:
    # sigma^2/(2n) (||X_j w||^2 + v^2 ||X_j||_F^2) minimised over v w = beta_j, numerically.
    X, _, blocks = _problem(n=20, groups=4, k=3, seed=3)
    sigma, n = 0.3, X.shape[0]
    weights = noise_injection_group_weights(X, blocks, sigma)
    rng = np.random.default_rng(4)
    betas = [rng.standard_normal(len(g)) for g in blocks]
    for g, b, lam in zip(blocks, betas, weights):
        Xj = X[:, g]
        term = minimize_scalar(lambda v, Xj=Xj, b=b: sigma**2 / (2 * n) * (
            np.sum((Xj @ b / v) ** 2) + v**2 * np.sum(Xj**2)), bounds=(1e-3, 1e3),
            method="bounded", options={"xatol": 1e-12}).fun
        assert term == pytest.approx(lam * np.linalg.norm(Xj @ b), rel=1e-6)
    penalty = group_lasso_penalty([torch.from_numpy(X[:, g]) for g in blocks],
                                  [torch.from_numpy(b) for b in betas], sigma)
    assert float(penalty) == pytest.approx(
        sum(lam * np.linalg.norm(X[:, g] @ b) for g, b, lam in zip(blocks, betas, weights)))


@pytest.mark.parametrize(("groups", "weights", "message"), [
    ([[0, 1], [1, 2]], [1.0, 1.0], "partition"),
    ([[0, 1], [2]], [1.0], "one per group"),
    ([[0, 1], [2]], [1.0, -1.0], "finite numbers >= 0"),
])
def test_bad_input(groups, weights, message) -> None:
    X, y, _ = _problem(n=5, groups=1, k=3)
    with pytest.raises(ValueError, match=message):
        group_lasso(X, y, groups, weights)


def test_dependent_columns_refused() -> None:
    X, y, _ = _problem(n=10, groups=2, k=2)
    X[:, 1] = 2 * X[:, 0]
    with pytest.raises(ValueError, match="not linearly independent"):
        fitted_group_lasso(X, y, [[0, 1], [2, 3]], [0.1, 0.1])
