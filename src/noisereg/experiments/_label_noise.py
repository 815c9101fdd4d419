"""Shared by the label-noise experiments: the sparse design, supports, off-support mass and
nested per-seed metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from noisereg._validate import check_int, check_positive
from noisereg.dln import sparse_regression
from noisereg.experiments.base import Summary


@dataclass(frozen=True)
class SparseDesign:
    """Config fields of a Gaussian design with unit columns and a sparse beta* (the magnitudes
    of beta*_S, random signs), redrawn until the irrepresentable constant is below
    ``max_irrepresentable``; experiment configs extend it."""

    n: int = 50
    d: int = 100
    magnitudes: tuple[float, ...] = (1.0, 0.6, 0.3)  # |beta*_S|, k = len(magnitudes)
    max_irrepresentable: float = 0.9  # designs are redrawn until the constant is below this

    def __post_init__(self) -> None:
        check_int("n", self.n, low=1)
        check_int("d", self.d, low=1)
        if not 1 <= len(self.magnitudes) <= min(self.n, self.d):
            raise ValueError("magnitudes must hold between 1 and min(n, d) values")
        for m in self.magnitudes:
            check_positive("magnitudes", m)
        check_positive("max_irrepresentable", self.max_irrepresentable)
        if self.max_irrepresentable > 1:
            raise ValueError("max_irrepresentable must be <= 1 (the irrepresentable condition)")

    def design(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, y, beta_star) of :func:`noisereg.dln.sparse_regression` for ``seed``."""
        return sparse_regression(self.n, self.d, len(self.magnitudes), seed=seed,
                                 magnitudes=self.magnitudes,
                                 max_irrepresentable=self.max_irrepresentable)


def support(beta: np.ndarray, tol: float) -> np.ndarray:
    """The mask |beta_j| > tol."""
    return np.abs(np.asarray(beta, dtype=float)) > tol


def support_errors(beta: np.ndarray, true_support: np.ndarray, tol: float) -> int:
    """Coordinates wrongly in or out of the support: |{j : |beta_j| > tol} xor S|."""
    return int(np.count_nonzero(support(beta, tol) != true_support))


def off_support_share(beta: np.ndarray, true_support: np.ndarray) -> float:
    """The share of the l1 mass of beta outside S: sum_{j not in S} |beta_j| / sum_j |beta_j|."""
    mass = np.abs(np.asarray(beta, dtype=float))
    return float(mass[~true_support].sum() / mass.sum())


def seed_values(summary: Summary, *path: Any) -> np.ndarray:
    """The nested metric ``metrics[path[0]][path[1]]...`` of every seed, stacked (seeds first);
    null (a non-finite value) reads as NaN."""
    values = []
    for run in summary["runs"]:
        value = run["metrics"]
        for key in path:
            value = value[key]
        values.append(value)
    return np.asarray(values, dtype=float)  # None (stored null) becomes NaN
