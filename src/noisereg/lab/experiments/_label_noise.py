"""Shared by the label-noise experiments: the sparse design, supports, off-support mass, settling
times and log-log slopes of a trace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from noisereg._validate import check_int, check_product, check_scale
from noisereg.dln import sparse_regression


def check_design(n: int, d: int, k: int | None = None) -> None:
    """Sizes of a sparse regression: ``n`` samples, ``d`` coordinates (the design within a
    memory bound) and, when given, a ``k``-sparse beta*."""
    check_int("n", n, low=1, high=100_000)
    check_int("d", d, low=1, high=100_000)
    check_product("n * d", n * d, 1e7, "memory of the design")
    if k is not None:
        check_int("k", k, low=1, high=min(n, d))


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
        check_design(self.n, self.d)
        if not 1 <= len(self.magnitudes) <= min(self.n, self.d):
            raise ValueError("magnitudes must hold between 1 and min(n, d) values")
        for m in self.magnitudes:
            check_scale("magnitudes", m, high=1e3)
        # <= 1: the irrepresentable condition
        check_scale("max_irrepresentable", self.max_irrepresentable, high=1.0)

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


def settling_time(times: Sequence[float], ok: Sequence[bool]) -> float:
    """The first time after which ``ok`` holds at every later record (inf if it fails at the
    last one): times[k] for the smallest k with ok[k:] all true."""
    ok = np.asarray(ok, dtype=bool)
    if ok.size == 0 or not ok[-1]:
        return float("inf")
    failing = np.flatnonzero(~ok)
    return float(times[failing[-1] + 1] if failing.size else times[0])


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope p of log y = p log x + c (x, y > 0, at least two distinct x)."""
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    if lx.shape != ly.shape or np.unique(lx).size < 2:
        raise ValueError("a log-log slope needs as many y as x and at least two distinct x")
    lx = lx - lx.mean()
    return float(lx @ (ly - ly.mean()) / (lx @ lx))


def tail_slope(times: Sequence[float], values: Sequence[float], decades: float) -> float:
    """The log-log slope of ``values`` against ``times`` over the last ``decades`` decades of
    time (the records with time >= last time / 10^decades)."""
    times, values = np.asarray(times, dtype=float), np.asarray(values, dtype=float)
    tail = times >= times[-1] / 10**decades
    return loglog_slope(times[tail], values[tail])
