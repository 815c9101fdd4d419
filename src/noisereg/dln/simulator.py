"""Label-noise SGD and gradient descent on diagonal linear networks, simulated fast.

Pillaud-Vivien, Reygner, Flammarion (COLT 2022): on beta = u*u - v*v (or u*u) with per-example
loss 1/2 (<x_i, beta> - y~_i)^2 and fresh noisy labels y~_i = y_i + delta eps (eps Rademacher or
N(0, 1)), SGD with step size gamma and batch B,

    r_b = <x_b, beta> - y_b - delta eps_b,   g = (1/B) sum_b r_b x_b,
    u <- u - 2 gamma g * u,   v <- v + 2 gamma g * v,

has a time average that solves the Lasso with lambda_j = gamma delta^2 ||X_j||^2 / (n B)
(:func:`noisereg.theory.label_noise_lasso_penalty`). Gradient descent is the case B = n, delta = 0.

Randomness: ``numpy_generator(seed, "label-noise")`` draws, block by block
(:func:`iter_draws`), the batch indices (then the noise signs / normals) of every step; the
compiled kernel consumes them, so the run is deterministic and reproducible by a plain loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from noisereg._seeding import numpy_generator
from noisereg._validate import (
    as_design,
    check_choice,
    check_fraction,
    check_int,
    check_nonnegative,
    check_positive,
)
from noisereg.dln._kernel import run_block

Parametrization = Literal["u2-v2", "u2"]
Noise = Literal["rademacher", "gaussian"]
TRACE_POINTS = 48  # log-spaced steps at which the trace is recorded
BLOCK_DRAWS = 1 << 16  # random draws per block (steps x batch), ~1 MB of indices and noise


@dataclass(frozen=True)
class Trace:
    """Quantities at log-spaced steps t (the last one is the final step).

    ``time`` = gamma t (continuous time); ``averages`` (T, d) the running average of beta over
    the steps in (average_from t, t]; ``loss`` = (1/2n) ||X beta_t - y||^2 on the clean labels,
    ``loss_avg`` the same for the running average; ``distance`` / ``distance_avg`` the relative
    distances
    ||b - reference|| / ||reference|| (absolute if the reference is 0), shape (T,) or (T, k)
    for k references, None without reference.

    >>> import numpy as np
    >>> from noisereg.dln import gradient_descent
    >>> X, y = np.array([[1.0, 2.0]]), np.array([2.0])
    >>> res = gradient_descent(X, y, step_size=0.05, steps=4000, init_scale=0.01)
    >>> trace = res.trace
    >>> int(trace.steps[-1]), trace.averages.shape[1], trace.distance is None
    (4000, 2, True)
    >>> bool(trace.loss[0] > trace.loss[-1]), bool(np.allclose(trace.time, 0.05 * trace.steps))
    (True, True)
    """

    steps: np.ndarray
    time: np.ndarray
    averages: np.ndarray
    loss: np.ndarray
    loss_avg: np.ndarray
    distance: np.ndarray | None
    distance_avg: np.ndarray | None


@dataclass(frozen=True)
class DLNResult:
    """``beta_avg``: mean of beta over the steps after ``average_from`` of the run;
    ``beta_last``, ``u``, ``v``: the final iterate; ``trace``: see :class:`Trace`.

    >>> import numpy as np
    >>> from noisereg.dln import gradient_descent
    >>> X, y = np.array([[1.0, 2.0]]), np.array([2.0])
    >>> res = gradient_descent(X, y, step_size=0.05, steps=4000, init_scale=0.01)
    >>> np.allclose(res.beta_last, res.u**2 - res.v**2), np.allclose(X @ res.beta_last, y)
    (True, True)
    """

    beta_avg: np.ndarray
    beta_last: np.ndarray
    u: np.ndarray
    v: np.ndarray
    trace: Trace


def iter_draws(rng: np.random.Generator, steps: int, n: int, batch_size: int, noise: Noise,
               noisy: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks (idx, eps) of shape (steps in block, batch_size) covering ``steps`` steps.

    Per block: indices uniform (batch 1), without replacement (1 < B < n) or all of them
    (B = n, no draw); then eps (Rademacher or N(0, 1)) unless ``noisy`` is False (zeros).
    """
    block = max(1, BLOCK_DRAWS // batch_size)
    for start in range(0, steps, block):
        m = min(block, steps - start)
        if batch_size == n:
            idx = np.tile(np.arange(n, dtype=np.int64), (m, 1))
        elif batch_size == 1:
            idx = rng.integers(0, n, size=(m, 1))
        else:
            rows = rng.permuted(np.tile(np.arange(n, dtype=np.int64), (m, 1)), axis=1)
            idx = np.ascontiguousarray(rows[:, :batch_size])
        if not noisy:
            eps = np.zeros((m, batch_size))
        elif noise == "rademacher":
            eps = 2.0 * rng.integers(0, 2, size=(m, batch_size)) - 1.0
        else:
            eps = rng.standard_normal((m, batch_size))
        yield idx, eps


def _relative_distance(betas: np.ndarray, reference: np.ndarray | None) -> np.ndarray | None:
    """||beta - ref|| / ||ref|| for each beta (rows) and each reference (rows of a 2-d one)."""
    if reference is None:
        return None
    scale = np.linalg.norm(reference, axis=-1)
    scale = np.where(scale > 0, scale, 1.0)
    if reference.ndim == 1:
        return np.linalg.norm(betas - reference, axis=-1) / scale
    return np.linalg.norm(betas[:, None, :] - reference[None], axis=-1) / scale


def label_noise_sgd(X: np.ndarray, y: np.ndarray, *, step_size: float, delta: float, steps: int,
                    init_scale: float, parametrization: Parametrization = "u2-v2",
                    noise: Noise = "rademacher", batch_size: int = 1, seed: int = 0,
                    average_from: float = 0.5, reference: np.ndarray | None = None,
                    trace_points: int = TRACE_POINTS) -> DLNResult:
    """Label-noise SGD on a diagonal linear network from u = v = alpha (``init_scale``).

    The update is in the module docstring (gamma = ``step_size``, delta = label-noise standard
    deviation). ``beta_avg`` averages beta over steps ``floor(average_from * steps) + 1`` to
    ``steps``. ``reference`` (shape (d,), or (k, d) for k of them), e.g. the Lasso solution, adds
    distances to the trace, recorded at about ``trace_points`` log-spaced steps.
    Raises ValueError if the run diverges (step size too large).

    The time average approaches the Lasso with lambda = gamma delta^2 / B (unit columns):

    >>> from noisereg.dln import label_noise_sgd, relative_error, sparse_regression
    >>> from noisereg.theory import label_noise_lasso_penalty, lasso
    >>> X, y, beta_star = sparse_regression(n=10, d=20, k=2, seed=0)
    >>> res = label_noise_sgd(X, y, step_size=0.02, delta=0.5, steps=100_000, init_scale=0.1)
    >>> target = lasso(X, y, label_noise_lasso_penalty(step_size=0.02, delta=0.5))
    >>> relative_error(res.beta_avg, target) < 0.01
    True
    """
    X, y = as_design(X, y)
    n, d = X.shape
    gamma = check_positive("step_size", step_size)
    delta = check_nonnegative("delta", delta)
    steps = check_int("steps", steps, low=1)
    alpha = check_positive("init_scale", init_scale)
    check_choice("parametrization", parametrization, ("u2-v2", "u2"))
    check_choice("noise", noise, ("rademacher", "gaussian"))
    batch = check_int("batch_size", batch_size, low=1, high=n)
    check_int("seed", seed, low=0)
    average_from = check_fraction("average_from", average_from, open_right=True)
    trace_points = check_int("trace_points", trace_points, low=2)
    if reference is not None:
        reference = np.asarray(reference, dtype=float)
        if reference.ndim not in (1, 2) or reference.shape[-1] != d \
                or not np.all(np.isfinite(reference)):
            raise ValueError(f"reference must be a finite array of shape ({d},) or (k, {d})")

    signed = parametrization == "u2-v2"
    u = np.full(d, alpha)
    v = np.full(d, alpha) if signed else np.zeros(d)
    beta = u * u - v * v
    total = np.zeros(d)
    trace_steps = np.unique(np.geomspace(1, steps, trace_points).round().astype(np.int64))
    starts = np.floor(average_from * trace_steps).astype(np.int64)
    ck_steps = np.unique(np.concatenate([trace_steps, starts[starts > 0]]))
    ck_total = np.zeros((ck_steps.size, d))
    ck_beta = np.zeros((ck_steps.size, d))
    ck_pos, done = 0, 0
    rng = numpy_generator(seed, "label-noise")
    for idx, eps in iter_draws(rng, steps, n, batch, noise, noisy=delta > 0):
        ran, ck_pos = run_block(X, y, idx, eps, delta, 2.0 * gamma, signed, u, v, beta, total,
                                done, ck_steps, ck_pos, ck_total, ck_beta)
        done += ran
        if ran < idx.shape[0] or not np.all(np.isfinite(beta)):
            _diverged(X, gamma, alpha**2 * (2 if signed else 1), done)

    def total_at(t: np.ndarray) -> np.ndarray:  # sum of beta_1..beta_t (0 for t = 0)
        rows = ck_total[np.searchsorted(ck_steps, t)]
        return np.where((t > 0)[:, None], rows, 0.0)

    averages = (total_at(trace_steps) - total_at(starts)) / (trace_steps - starts)[:, None]
    betas = ck_beta[np.searchsorted(ck_steps, trace_steps)]
    trace = Trace(steps=trace_steps, time=gamma * trace_steps, averages=averages,
                  loss=_loss(X, y, betas),
                  loss_avg=_loss(X, y, averages), distance=_relative_distance(betas, reference),
                  distance_avg=_relative_distance(averages, reference))
    return DLNResult(beta_avg=averages[-1], beta_last=beta.copy(), u=u, v=v, trace=trace)


def _loss(X: np.ndarray, y: np.ndarray, betas: np.ndarray) -> np.ndarray:
    return 0.5 * ((betas @ X.T - y) ** 2).mean(axis=-1)


def _diverged(X: np.ndarray, gamma: float, uv_init: float, step: int) -> None:
    row = float((X**2).sum(axis=1).max())
    raise ValueError(
        f"the run diverged after {step} steps: step_size={gamma:g} is too large. Stability needs "
        f"roughly gamma ||x_i||^2 max_j(u_j^2 + v_j^2) < 1; here gamma max_i ||x_i||^2 = "
        f"{gamma * row:.3g}, u^2 + v^2 = {uv_init:.3g} at init and grows to about max|beta| "
        f"along the run")


def gradient_descent(X: np.ndarray, y: np.ndarray, *, step_size: float, steps: int,
                     init_scale: float, parametrization: Parametrization = "u2-v2",
                     reference: np.ndarray | None = None) -> DLNResult:
    """Full-batch gradient descent on (1/2n) ||X beta - y||^2 from u = v = alpha:
    u <- u - 2 gamma grad * u, v <- v + 2 gamma grad * v, grad = X^T (X beta - y) / n.

    Label-noise SGD with B = n and delta = 0 (no random draw); for small gamma it tracks the
    gradient flow, whose limit is :func:`noisereg.theory.hypentropy_interpolator`.

    From a small initialisation it reaches about the minimum-L1 interpolator (0, 1):

    >>> import numpy as np
    >>> from noisereg.dln import gradient_descent
    >>> X, y = np.array([[1.0, 2.0]]), np.array([2.0])
    >>> res = gradient_descent(X, y, step_size=0.05, steps=4000, init_scale=0.01)
    >>> from noisereg.dln import relative_error
    >>> from noisereg.theory import hypentropy_interpolator
    >>> relative_error(res.beta_last, hypentropy_interpolator(X, y, init_scale=0.01)) < 0.01
    True
    >>> res.beta_last.round(1)
    array([0., 1.])
    """
    n = as_design(X)[0].shape[0]
    return label_noise_sgd(X, y, step_size=step_size, delta=0.0, steps=steps,
                           init_scale=init_scale, parametrization=parametrization, batch_size=n,
                           reference=reference)
