r"""The group Lasso that global noise injection solves on a group network (Orvieto et al. 2023).

On Phi(v, w) = sum_j v_j X_j w_j (v_j scalar, w_j in R^k) global noise of std sigma adds
sigma^2/(2n) sum_j (||X_j w_j||^2 + v_j^2 ||X_j||_F^2) to the loss; minimised over the
factorizations beta_j = v_j w_j (AM-GM) this is the penalty

    sum_j lambda_j ||X_j beta_j||_2,    lambda_j = sigma^2 ||X_j||_F / n,

a group Lasso measured in the fit X_j beta_j rather than in beta_j. With X_j = Q_j R_j (thin QR,
X_j of full column rank) and gamma_j = R_j beta_j it is the standard group Lasso on the design
[Q_1 ... Q_G], which :func:`group_lasso` solves by accelerated proximal gradient (FISTA with
block soft-thresholding, the prox of lambda ||.||_2).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from noisereg._validate import as_design, check_int, check_nonnegative, check_positive


def _check_groups(groups: Sequence[Sequence[int]], d: int) -> list[np.ndarray]:
    blocks = [np.asarray(g, dtype=int) for g in groups]
    flat = np.concatenate(blocks) if blocks else np.array([], dtype=int)
    if any(b.ndim != 1 or b.size == 0 for b in blocks) or sorted(flat.tolist()) != list(range(d)):
        raise ValueError(f"groups must partition the columns 0..{d - 1} into non-empty groups")
    return blocks


def _check_weights(weights: Sequence[float], count: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if w.shape != (count,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be {count} finite numbers >= 0 (one per group)")
    return w


def group_lasso(X: np.ndarray, y: np.ndarray, groups: Sequence[Sequence[int]],
                weights: Sequence[float], *, tol: float = 1e-12,
                max_iter: int = 200_000) -> np.ndarray:
    """argmin_beta ||y - X beta||^2 / (2n) + sum_j weights_j ||beta_{G_j}||_2.

    FISTA with adaptive restart; stops when the proximal-gradient step moves beta by less than
    ``tol`` (relative to ||beta||, or absolutely at beta = 0).

    With X^T X / n = I the solution shrinks z = X^T y / n = (2, 1) as a block,
    (1 - w / ||z||) z, here by half:

    >>> import numpy as np
    >>> from noisereg.theory import group_lasso
    >>> X, y = np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([3.0, 1.0])
    >>> group_lasso(X, y, [[0, 1]], [np.sqrt(5) / 2]).round(6)
    array([1. , 0.5])
    >>> group_lasso(X, y, [[0, 1]], [3.0])  # w >= ||z||: the group is zero
    array([0., 0.])
    """
    X, y = as_design(X, y)
    n, d = X.shape
    blocks = _check_groups(groups, d)
    w = _check_weights(weights, len(blocks))
    check_positive("tol", tol)
    check_int("max_iter", max_iter, low=1)
    step = n / max(np.linalg.norm(X, 2) ** 2, np.finfo(float).tiny)  # 1 / Lipschitz constant

    def prox(z: np.ndarray) -> np.ndarray:
        out = np.zeros_like(z)
        for block, wj in zip(blocks, w):
            norm = np.linalg.norm(z[block])
            if norm > step * wj:
                out[block] = (1 - step * wj / norm) * z[block]
        return out

    beta = np.zeros(d)
    momentum, t = beta.copy(), 1.0
    for _ in range(max_iter):
        new = prox(momentum - step * X.T @ (X @ momentum - y) / n)
        if np.linalg.norm(new - beta) <= tol * max(np.linalg.norm(new), 1.0):
            return new
        if np.dot(new - beta, momentum - new) > 0:  # restart: the momentum points uphill
            t = 1.0
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        momentum = new + (t - 1) / t_next * (new - beta)
        beta, t = new, t_next
    raise RuntimeError(f"group_lasso did not converge to tol={tol:g} in {max_iter} iterations")


def fitted_group_lasso(X: np.ndarray, y: np.ndarray, groups: Sequence[Sequence[int]],
                       weights: Sequence[float], **solver: float) -> np.ndarray:
    """argmin_beta ||y - X beta||^2 / (2n) + sum_j weights_j ||X_{G_j} beta_{G_j}||_2,
    through the thin QR of every group (each X_{G_j} must have full column rank).

    Here X^T X = 2 I, so ||X beta|| = sqrt(2) ||beta||: a group Lasso with weight sqrt(2) w:

    >>> import numpy as np
    >>> from noisereg.theory import fitted_group_lasso, group_lasso
    >>> X, y = np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([3.0, 1.0])
    >>> np.allclose(fitted_group_lasso(X, y, [[0, 1]], [0.5]),
    ...             group_lasso(X, y, [[0, 1]], [0.5 * np.sqrt(2)]))
    True
    """
    X, y = as_design(X, y)
    blocks = _check_groups(groups, X.shape[1])
    factors = [np.linalg.qr(X[:, b]) for b in blocks]
    for (_, r), b in zip(factors, blocks):
        if np.min(np.abs(np.diag(r))) <= 1e-10 * max(np.abs(np.diag(r)).max(), 1.0):
            raise ValueError(f"the columns {b.tolist()} of X are not linearly independent")
    Q = np.concatenate([q for q, _ in factors], axis=1)
    spans = list(pairwise(np.cumsum([0] + [b.size for b in blocks])))
    gamma = group_lasso(Q, y, [range(a, z) for a, z in spans], weights, **solver)
    beta = np.zeros(X.shape[1])
    for (_, r), b, (a, z) in zip(factors, blocks, spans):
        beta[b] = np.linalg.solve(r, gamma[a:z])
    return beta


def noise_injection_group_weights(X: np.ndarray, groups: Sequence[Sequence[int]],
                                  sigma: float) -> np.ndarray:
    """lambda_j = sigma^2 ||X_{G_j}||_F / n: the weights of :func:`fitted_group_lasso` that
    global noise of std sigma induces on the group network.

    >>> import numpy as np
    >>> from noisereg.theory import noise_injection_group_weights
    >>> X = np.array([[3.0, 1.0], [4.0, 1.0]])  # ||X_1|| = 5, ||X_2|| = sqrt(2)
    >>> noise_injection_group_weights(X, [[0], [1]], sigma=1.0).round(4)  # / n = 2
    array([2.5   , 0.7071])
    """
    X, _ = as_design(X)
    sigma = check_nonnegative("sigma", sigma)
    blocks = _check_groups(groups, X.shape[1])
    return np.array([sigma**2 * np.linalg.norm(X[:, b]) / X.shape[0] for b in blocks])
