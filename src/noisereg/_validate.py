"""Input checks shared by the public API: each raises ``ValueError`` naming the parameter."""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any

import numpy as np
import torch


def _is_real_scalar(value: Any) -> bool:
    """A real number: Python or NumPy int / float, or a 0-d real tensor (not a bool)."""
    if isinstance(value, torch.Tensor):
        return value.dim() == 0 and not value.is_complex() and value.dtype != torch.bool
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_finite(name: str, value: float) -> float:
    if not _is_real_scalar(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_nonnegative(name: str, value: float, *, high: float | None = None) -> float:
    value = check_finite(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value if high is None else check_range(name, value, 0.0, high)


def check_positive(name: str, value: float) -> float:
    value = check_finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return value


def check_fraction(name: str, value: float, *, open_right: bool = False) -> float:
    value = check_finite(name, value)
    if value < 0 or value > 1 or (open_right and value == 1):
        interval = "[0, 1)" if open_right else "[0, 1]"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


# A positive scale (step size, noise level, penalty weight) below this is lost to float64
# rounding against O(1) weights, and its square underflows well before the smallest normal.
SMALLEST_SCALE = 1e-12


def check_range(name: str, value: float, low: float, high: float) -> float:
    """A finite number in ``[low, high]``."""
    value = check_finite(name, value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    return value


def check_scale(name: str, value: float, high: float) -> float:
    """A positive scale in ``[SMALLEST_SCALE, high]``."""
    return check_range(name, check_positive(name, value), SMALLEST_SCALE, high)


def check_product(names: str, value: float, high: float, why: str) -> float:
    """A product of sizes (``names``, e.g. "n * d") at most ``high``, with the reason."""
    if value > high:
        raise ValueError(f"{names} must be <= {high:.3g} ({why}), got {value:.3g}")
    return value


def as_design(X: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` as a finite float (n, d) array and ``y`` as a finite (n,) array (ValueError if not)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be a non-empty 2-d array (n, d), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must contain only finite values")
    if y is None:
        return X, None
    y = np.asarray(y, dtype=float)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y must contain only finite values")
    return X, y
