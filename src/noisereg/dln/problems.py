"""Sparse regression instances for diagonal linear networks (noiseless y = X beta*, n < d)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from noisereg._seeding import numpy_generator
from noisereg._validate import check_int, check_positive
from noisereg.theory.sparse import irrepresentable_constant


def sparse_regression(n: int, d: int, k: int, *, seed: int,
                      magnitudes: float | Sequence[float] = 1.0, signed: bool = True,
                      max_irrepresentable: float | None = None,
                      max_attempts: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian design with unit columns (||X_j||^2 / n = 1), a k-sparse beta*, y = X beta*.

    The support is k uniform indices; beta*_S = magnitudes (scalar or k values) times random
    signs (or +1 when not ``signed``). With ``max_irrepresentable``, X is redrawn (same seed
    stream) until ||X_{S^c}^T X_S (X_S^T X_S)^{-1} sign(beta*_S)||_inf < max_irrepresentable.
    Returns (X, y, beta_star).

    >>> import numpy as np
    >>> from noisereg.dln import sparse_regression
    >>> X, y, beta_star = sparse_regression(n=5, d=10, k=2, seed=0, magnitudes=3.0)
    >>> X.shape, np.allclose((X**2).mean(axis=0), 1.0), np.allclose(X @ beta_star, y)
    ((5, 10), True, True)
    >>> int(np.count_nonzero(beta_star)), np.unique(np.abs(beta_star)).tolist()
    (2, [0.0, 3.0])
    """
    check_int("n", n, low=1)
    check_int("d", d, low=1)
    check_int("k", k, low=1, high=min(n, d))
    check_int("seed", seed, low=0)
    size = np.asarray(magnitudes, dtype=float)
    size = np.full(k, size) if size.ndim == 0 else size
    if size.shape != (k,) or not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ValueError(f"magnitudes must be a positive number or {k} positive numbers")
    if max_irrepresentable is not None:
        check_positive("max_irrepresentable", max_irrepresentable)
    rng = numpy_generator(seed, "data")
    support = np.sort(rng.choice(d, size=k, replace=False))
    signs = rng.choice([-1.0, 1.0], size=k) if signed else np.ones(k)
    beta_star = np.zeros(d)
    beta_star[support] = signs * size
    for _ in range(check_int("max_attempts", max_attempts, low=1)):
        X = rng.standard_normal((n, d))
        X /= np.sqrt((X**2).mean(axis=0))
        if max_irrepresentable is None or \
                irrepresentable_constant(X, support, signs) < max_irrepresentable:
            return X, X @ beta_star, beta_star
    raise ValueError(f"no design with irrepresentable constant < {max_irrepresentable} in "
                     f"{max_attempts} draws: increase n or decrease k")


def relative_error(estimate: ArrayLike, target: ArrayLike) -> float:
    """||estimate - target|| / ||target|| (Euclidean, or Frobenius for matrices), in float64;
    arrays, CPU tensors and nested lists alike.

    >>> import numpy as np
    >>> from noisereg.dln import relative_error
    >>> relative_error(np.array([3.0, 4.0]), [0.0, 8.0])  # ||(3, -4)|| / 8
    0.625
    """
    estimate, target = np.asarray(estimate, dtype=float), np.asarray(target, dtype=float)
    return float(np.linalg.norm(estimate - target) / np.linalg.norm(target))
