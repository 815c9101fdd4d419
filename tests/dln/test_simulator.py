"""The compiled simulator against a plain-Python loop fed with the same random draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noisereg._seeding import numpy_generator
from noisereg.dln import gradient_descent, label_noise_sgd
from noisereg.dln.simulator import iter_draws


def _problem(n: int = 8, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta_star = np.zeros(d)
    beta_star[:3] = (1.0, -0.5, 0.8)
    return X, X @ beta_star


def _plain_python(X, y, *, step_size, delta, steps, init_scale, parametrization, noise,
                  batch_size, seed, average_from):
    """Per-coordinate Python floats: the update of Pillaud-Vivien et al. written out."""
    n, d = X.shape
    rows, labels = X.tolist(), y.tolist()
    blocks = list(iter_draws(numpy_generator(seed, "label-noise"), steps, n, batch_size, noise,
                             delta > 0))
    idx = np.concatenate([b[0] for b in blocks]).tolist()
    eps = np.concatenate([b[1] for b in blocks]).tolist()
    signed = parametrization == "u2-v2"
    u = [init_scale] * d
    v = [init_scale if signed else 0.0] * d
    betas = []
    for s in range(steps):
        beta = [u[j] ** 2 - v[j] ** 2 for j in range(d)]
        grad = [0.0] * d
        for b, i in enumerate(idx[s]):
            r = sum(rows[i][j] * beta[j] for j in range(d)) - labels[i] - delta * eps[s][b]
            grad = [grad[j] + r * rows[i][j] / batch_size for j in range(d)]
        u = [u[j] * (1 - 2 * step_size * grad[j]) for j in range(d)]
        v = [v[j] * (1 + 2 * step_size * grad[j]) for j in range(d)]
        betas.append([u[j] ** 2 - v[j] ** 2 for j in range(d)])
    betas = np.array(betas)
    start = math.floor(average_from * steps)
    return betas, betas[start:].mean(axis=0)


def _second_half_averages(betas: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The mean of beta_{t//2 + 1}, ..., beta_t for each t of ``steps``."""
    return np.array([betas[t // 2: t].mean(axis=0) for t in steps])


@pytest.mark.parametrize(
    ("parametrization", "noise", "batch_size"),
    [("u2-v2", "rademacher", 1), ("u2", "gaussian", 1), ("u2-v2", "gaussian", 3),
     ("u2-v2", "rademacher", 8)],
)
def test_simulator_equals_plain_python_with_the_same_draws(parametrization, noise,
                                                           batch_size) -> None:
    X, y = _problem()
    kwargs = dict(step_size=0.01, delta=0.7, steps=300, init_scale=0.3,
                  parametrization=parametrization, noise=noise, batch_size=batch_size, seed=5,
                  average_from=0.25)
    betas, average = _plain_python(X, y, **kwargs)
    result = label_noise_sgd(X, y, **kwargs)
    np.testing.assert_allclose(result.beta_last, betas[-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.beta_avg, average, rtol=0, atol=1e-12)
    uv = result.u**2 - result.v**2
    np.testing.assert_allclose(uv, betas[-1], rtol=0, atol=1e-12)


def test_trace_is_recorded_at_log_spaced_steps() -> None:
    X, y = _problem()
    kwargs = dict(step_size=0.02, delta=0.5, steps=400, init_scale=0.2,
                  parametrization="u2-v2", noise="rademacher", batch_size=1, seed=1,
                  average_from=0.5)
    betas, _ = _plain_python(X, y, **kwargs)
    reference = np.linspace(-1, 1, X.shape[1])
    trace = label_noise_sgd(X, y, reference=reference, **kwargs).trace
    t = trace.steps
    assert t[0] == 1 and t[-1] == 400 and np.all(np.diff(t) > 0) and len(t) > 20
    assert np.all(t[1:] / t[:-1] <= 2.0)  # geometric spacing (integer rounding at the start)
    np.testing.assert_allclose(trace.time, 0.02 * t)
    at_t = betas[t - 1]
    averages = _second_half_averages(betas, t)
    np.testing.assert_allclose(trace.averages, averages, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.loss, 0.5 * ((at_t @ X.T - y) ** 2).mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(trace.loss_avg, 0.5 * ((averages @ X.T - y) ** 2).mean(axis=1),
                               rtol=1e-10)
    scale = np.linalg.norm(reference)
    np.testing.assert_allclose(trace.distance, np.linalg.norm(at_t - reference, axis=1) / scale,
                               rtol=1e-10)
    np.testing.assert_allclose(trace.distance_avg,
                               np.linalg.norm(averages - reference, axis=1) / scale, rtol=1e-10)
    # Several references at once; a zero reference gives the absolute distance.
    both = np.stack([reference, np.zeros_like(reference)])
    two = label_noise_sgd(X, y, reference=both, **kwargs).trace
    np.testing.assert_allclose(two.distance_avg[:, 0], trace.distance_avg, rtol=1e-12)
    np.testing.assert_allclose(two.distance[:, 1], np.linalg.norm(at_t, axis=1), rtol=1e-10)
    # A finer trace records more steps, the same numbers at the steps both record.
    fine = label_noise_sgd(X, y, trace_points=200, **kwargs).trace
    assert len(fine.steps) > len(t) and fine.steps[-1] == 400
    np.testing.assert_allclose(fine.averages, _second_half_averages(betas, fine.steps), atol=1e-12)


def test_gradient_descent_is_the_full_batch_noiseless_update() -> None:
    X, y = _problem()
    n = X.shape[0]
    u = np.full(X.shape[1], 0.5)
    v = u.copy()
    for _ in range(200):
        grad = X.T @ (X @ (u * u - v * v) - y) / n
        u, v = u * (1 - 0.02 * grad), v * (1 + 0.02 * grad)
    result = gradient_descent(X, y, step_size=0.01, steps=200, init_scale=0.5)
    np.testing.assert_allclose(result.beta_last, u * u - v * v, rtol=0, atol=1e-12)
    assert result.trace.distance is None


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    X, y = _problem()
    kwargs = dict(step_size=0.01, delta=1.0, steps=500, init_scale=0.1)
    a = label_noise_sgd(X, y, seed=3, **kwargs)
    b = label_noise_sgd(X, y, seed=3, **kwargs)
    c = label_noise_sgd(X, y, seed=4, **kwargs)
    np.testing.assert_array_equal(a.beta_avg, b.beta_avg)
    assert not np.array_equal(a.beta_avg, c.beta_avg)


def test_divergence_raises_with_the_stability_hint() -> None:
    X, y = _problem()
    with pytest.raises(ValueError, match=r"diverged.*gamma \|\|x_i\|\|\^2 max_j\(u_j\^2"):
        label_noise_sgd(X, y, step_size=5.0, delta=1.0, steps=10_000, init_scale=1.0)
    with pytest.raises(ValueError, match="diverged"):
        gradient_descent(X, y, step_size=3.0, steps=10_000, init_scale=1.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"X": np.ones(5)}, "X must be a non-empty 2-d array"),
        ({"X": np.full((8, 12), np.nan)}, "X must contain only finite values"),
        ({"y": np.ones(7)}, r"y must have shape \(8,\)"),
        ({"y": np.full(8, np.inf)}, "y must contain only finite values"),
        ({"delta": -0.1}, "delta must be >= 0"),
        ({"step_size": 0.0}, "step_size must be > 0"),
        ({"steps": 0}, "steps must be in"),
        ({"steps": 2.5}, "steps must be an integer"),
        ({"init_scale": -1.0}, "init_scale must be > 0"),
        ({"batch_size": 9}, r"batch_size must be in \[1, 8\]"),
        ({"noise": "uniform"}, "noise must be one of 'rademacher', 'gaussian'"),
        ({"parametrization": "u3"}, "parametrization must be one of 'u2-v2', 'u2'"),
        ({"average_from": 1.0}, r"average_from must be in \[0, 1\)"),
        ({"reference": np.ones(3)}, r"reference must be a finite array of shape \(12,\)"),
        ({"reference": np.ones((2, 2, 12))}, "reference must be a finite array"),
        ({"seed": -1}, "seed must be in"),
        ({"trace_points": 1}, "trace_points must be in"),
    ],
)
def test_bad_input_names_the_parameter(change, message) -> None:
    X, y = _problem()
    kwargs = dict(X=X, y=y, step_size=0.01, delta=1.0, steps=10, init_scale=0.1)
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        label_noise_sgd(kwargs.pop("X"), kwargs.pop("y"), **kwargs)
