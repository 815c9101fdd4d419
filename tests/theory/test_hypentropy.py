"""The hypentropy interpolator: its KKT conditions, optimality along the null space of X, and
its L1 (small alpha) and L2 (large alpha) limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import null_space
from scipy.optimize import linprog

from noisereg.theory import hypentropy_interpolator


def _problem(n: int = 15, d: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = np.zeros(d)
    beta[:3] = (1.0, -2.0, 0.5)
    return X, X @ beta


def _q(beta: np.ndarray, alpha: float) -> float:
    """Q_alpha of Woodworth et al. (2020)."""
    a2 = alpha**2
    return float(np.sum(2 * a2 - np.sqrt(4 * a2**2 + beta**2)
                        + beta * np.arcsinh(beta / (2 * a2))))


def _in_row_space(X: np.ndarray, z: np.ndarray) -> float:
    """Residual of z = X^T nu solved in least squares, relative to ||z||."""
    nu = np.linalg.lstsq(X.T, z, rcond=None)[0]
    return float(np.linalg.norm(X.T @ nu - z) / np.linalg.norm(z))


@pytest.mark.parametrize("alpha", [0.05, 0.5, 3.0])
def test_kkt_conditions_signed(alpha) -> None:
    X, y = _problem()
    beta = hypentropy_interpolator(X, y, alpha)
    np.testing.assert_allclose(X @ beta, y, atol=1e-10)
    # beta = 2 alpha^2 sinh(X^T nu)  <=>  arcsinh(beta / (2 alpha^2)) is in the row space of X.
    assert _in_row_space(X, np.arcsinh(beta / (2 * alpha**2))) < 1e-9


def test_kkt_conditions_nonnegative() -> None:
    X, y = _problem()
    y = X @ np.abs(np.linalg.pinv(X) @ y)  # a non-negative interpolator exists
    beta = hypentropy_interpolator(X, y, 0.3, parametrization="u2")
    np.testing.assert_allclose(X @ beta, y, atol=1e-10)
    assert beta.min() > 0
    assert _in_row_space(X, np.log(beta / 0.3**2)) < 1e-9


def test_minimises_q_along_the_null_space() -> None:
    X, y = _problem()
    alpha = 0.4
    beta = hypentropy_interpolator(X, y, alpha)
    directions = null_space(X).T[:10]
    base = _q(beta, alpha)
    for z in directions:
        for t in (1e-3, -1e-3, 0.1):
            assert _q(beta + t * z, alpha) > base


def test_small_alpha_is_min_l1_and_large_alpha_is_min_l2() -> None:
    X, y = _problem()
    d = X.shape[1]
    lp = linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None),
                 method="highs")
    min_l1 = lp.x[:d] - lp.x[d:]
    min_l2 = np.linalg.pinv(X) @ y
    small = hypentropy_interpolator(X, y, 1e-5)
    large = hypentropy_interpolator(X, y, 100.0)
    assert np.linalg.norm(small - min_l1) / np.linalg.norm(min_l1) < 1e-3
    assert np.linalg.norm(large - min_l2) / np.linalg.norm(min_l2) < 1e-6


def test_bad_input_and_infeasible_problem() -> None:
    X, y = _problem()
    with pytest.raises(ValueError, match="init_scale must be > 0"):
        hypentropy_interpolator(X, y, 0.0)
    with pytest.raises(ValueError, match="parametrization must be one of"):
        hypentropy_interpolator(X, y, 0.1, parametrization="u4")
    with pytest.raises(ValueError, match="y must have shape"):
        hypentropy_interpolator(X, y[:3], 0.1)
    X1 = np.ones((1, 3))
    with pytest.raises(ValueError, match="did not converge"):  # no beta >= 0 with sum = -1
        hypentropy_interpolator(X1, np.array([-1.0]), 0.1, parametrization="u2")
