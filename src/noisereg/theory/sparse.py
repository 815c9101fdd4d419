"""The Lasso that label-noise SGD solves implicitly (Pillaud-Vivien, Reygner, Flammarion 2022).

Label-noise SGD on a diagonal linear network (beta = u*u - v*v) with step size gamma, label
noise of standard deviation delta and batch size B has a time average that satisfies the KKT
conditions of the weighted Lasso

    min_beta  (1/2n) ||X beta - y||^2 + sum_j lambda_j |beta_j|,
    lambda_j = gamma delta^2 / B * ||X_j||^2 / n,

i.e. scikit-learn's ``Lasso(alpha=gamma delta^2 / B)`` when the columns have ||X_j||^2 / n = 1.
"""

from __future__ import annotations

import numpy as np

from noisereg._extras import require
from noisereg._validate import as_design, check_int, check_nonnegative, check_positive


def column_weights(X: np.ndarray) -> np.ndarray:
    """Per-column weights ||X_j||^2 / n (all 1 for unit columns).

    >>> import numpy as np
    >>> from noisereg.theory import column_weights
    >>> column_weights(np.array([[1.0, 0.0], [3.0, 4.0]]))  # (1 + 9) / 2, 16 / 2
    array([5., 8.])
    """
    X, _ = as_design(X)
    return (X**2).mean(axis=0)


def label_noise_lasso_penalty(step_size: float, delta: float, batch_size: int = 1,
                              X: np.ndarray | None = None) -> float | np.ndarray:
    """The Lasso penalty of label-noise SGD: lambda = gamma delta^2 / B.

    Without ``X`` the scalar lambda (scikit-learn's ``alpha``) for unit columns
    ||X_j||^2 / n = 1. With ``X`` the vector of per-column penalties
    lambda_j = lambda ||X_j||^2 / n, to pass as ``lasso(X, y, 1.0, weights=lambda_j)``.
    gamma is the step size, delta the label-noise standard deviation, B the batch size.

    >>> import numpy as np
    >>> from noisereg.theory import label_noise_lasso_penalty
    >>> label_noise_lasso_penalty(0.1, 2.0, batch_size=4)  # 0.1 * 2^2 / 4
    0.1
    >>> label_noise_lasso_penalty(0.1, 2.0, batch_size=4, X=np.array([[1.0, 0.0], [3.0, 4.0]]))
    array([0.5, 0.8])
    """
    gamma = check_positive("step_size", step_size)
    delta = check_nonnegative("delta", delta)
    batch = check_int("batch_size", batch_size, low=1)
    lam = gamma * delta**2 / batch
    return lam if X is None else lam * column_weights(X)


def lasso(X: np.ndarray, y: np.ndarray, lam: float, weights: np.ndarray | None = None,
          positive: bool = False) -> np.ndarray:
    """Weighted Lasso argmin_beta (1/2n) ||X beta - y||^2 + lam sum_j w_j |beta_j|.

    Solved by scikit-learn's coordinate descent on rescaled columns X_j / w_j (then
    beta_j = c_j / w_j), no intercept, tight tolerance. ``weights`` (all > 0) default to 1;
    ``positive`` restricts to beta >= 0 (the u*u parametrization).

    With X^T X / n = I the solution soft-thresholds X^T y / n = (2, 1) by lam:

    >>> import numpy as np
    >>> from noisereg.theory import lasso
    >>> X, y = np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([3.0, 1.0])
    >>> lasso(X, y, 0.5).round(6)
    array([1.5, 0.5])
    >>> lasso(X, y, 0.5, weights=np.array([1.0, 4.0])).round(6)  # lam w_2 = 2 > 1
    array([1.5, 0. ])
    """
    X, y = as_design(X, y)
    lam = check_positive("lam", lam)
    if weights is None:
        w = np.ones(X.shape[1])
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (X.shape[1],) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weights must be a finite positive array of shape ({X.shape[1]},)")
    linear_model = require("sklearn.linear_model", "theory", "the Lasso oracle")
    model = linear_model.Lasso(alpha=lam, fit_intercept=False, positive=bool(positive), tol=1e-12,
                  max_iter=1_000_000, selection="cyclic")
    model.fit(X / w, y)  # sklearn warns (ConvergenceWarning) if the dual gap stays above tol
    return model.coef_ / w


def irrepresentable_constant(X: np.ndarray, support: np.ndarray, signs: np.ndarray) -> float:
    """||X_{S^c}^T X_S (X_S^T X_S)^{-1} sign_S||_inf: the Lasso recovers supp(beta*) when < 1.

    ``support``: indices of S or a boolean mask of length d; ``signs``: sign(beta*_S), one per
    element of S (in the order of the indices). Returns 0 when S^c is empty.

    With X_S = I the constant is |<x_3, sign_S>| for the third column x_3 = (0.6, 0.8):

    >>> import numpy as np
    >>> from noisereg.theory import irrepresentable_constant
    >>> X = np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.8]])
    >>> round(irrepresentable_constant(X, [0, 1], [1, 1]), 6)  # 0.6 + 0.8
    1.4
    >>> round(irrepresentable_constant(X, [0, 1], [1, -1]), 6)  # |0.6 - 0.8|
    0.2
    """
    X, _ = as_design(X)
    d = X.shape[1]
    support = np.asarray(support)
    if support.dtype == bool:
        if support.shape != (d,):
            raise ValueError(f"support as a mask must have shape ({d},), got {support.shape}")
        support = np.flatnonzero(support)
    support = support.astype(int)
    if support.ndim != 1 or support.size == 0 or len(set(support.tolist())) != support.size \
            or support.min() < 0 or support.max() >= d:
        raise ValueError(f"support must be distinct indices in [0, {d}) (non-empty)")
    signs = np.asarray(signs, dtype=float)
    if signs.shape != support.shape or not np.all(np.abs(signs) == 1):
        raise ValueError(f"signs must be {support.size} values in {{-1, +1}}, one per index of S")
    rest = np.setdiff1d(np.arange(d), support)
    if rest.size == 0:
        return 0.0
    XS = X[:, support]
    direction = np.linalg.solve(XS.T @ XS, signs)
    return float(np.max(np.abs(X[:, rest].T @ (XS @ direction))))
