"""Speed of the label-noise simulator (issue 3): >= 2e6 steps/s at d = 100, batch 1, and
>= 20x a NumPy loop doing the same update on the same draws."""

from __future__ import annotations

import numpy as np

from noisereg._seeding import numpy_generator
from noisereg.dln import label_noise_sgd, sparse_regression
from noisereg.dln.simulator import iter_draws
from noisereg.lab.bench import Target, side_by_side

N, D, STEPS, LOOP_STEPS = 40, 100, 2_000_000, 40_000
GAMMA, DELTA, ALPHA = 0.01, 2.0, 0.1


def numpy_loop(X: np.ndarray, y: np.ndarray, steps: int, seed: int = 0) -> np.ndarray:
    """The update vectorised over coordinates only: r = <x_i, beta> - y_i - delta eps,
    u <- u (1 - 2 gamma r x_i), v <- v (1 + 2 gamma r x_i), with the time average of beta."""
    u = np.full(X.shape[1], ALPHA)
    v = u.copy()
    total = np.zeros(X.shape[1])
    draws = iter_draws(numpy_generator(seed, "label-noise"), steps, X.shape[0], 1, "rademacher")
    for idx, eps in draws:
        for i, e in zip(idx[:, 0], eps[:, 0]):
            x = X[i]
            a = 2 * GAMMA * (x @ (u * u - v * v) - y[i] - DELTA * e) * x
            u, v = u * (1 - a), v * (1 + a)
            total += u * u - v * v
    return total / steps


def _simulate(X: np.ndarray, y: np.ndarray, steps: int) -> None:
    label_noise_sgd(X, y, step_size=GAMMA, delta=DELTA, steps=steps, init_scale=ALPHA)


def _steps_per_second() -> float:
    X, y, _ = sparse_regression(N, D, 5, seed=0)
    seconds = side_by_side({"simulator": lambda: _simulate(X, y, STEPS)}, repeats=5, warmup=1)
    return STEPS / seconds["simulator"]


def _speedup_over_numpy() -> float:
    X, y, _ = sparse_regression(N, D, 5, seed=0)
    seconds = side_by_side({"numpy": lambda: numpy_loop(X, y, LOOP_STEPS),
                            "simulator": lambda: _simulate(X, y, LOOP_STEPS)},
                           repeats=5, warmup=1)
    return seconds["numpy"] / seconds["simulator"]


TARGETS = [
    Target("label-noise-steps-per-s", f"label_noise_sgd steps/s, d={D}, n={N}, batch 1, one core",
           ">=", 2e6, "steps/s", _steps_per_second),
    Target("label-noise-vs-numpy", f"label_noise_sgd vs a NumPy loop, {LOOP_STEPS} steps, d={D}",
           ">=", 20.0, "x", _speedup_over_numpy),
]
