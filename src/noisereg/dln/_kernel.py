"""Compiled inner loop of the diagonal-network simulator (numba: ~40x a NumPy loop at d = 100)."""

from __future__ import annotations

import numpy as np

from noisereg._extras import require

njit = require("numba", "dln", "noisereg.dln's compiled simulator").njit

# |residual| beyond this counts as divergence: far past any sane label, far below overflow.
DIVERGED = 1e100


@njit(cache=True, inline="always")
def _residual(X, y, beta, i, noise):  # pragma: no cover - compiled
    """r = <x_i, beta> - y_i - noise."""
    r = -y[i] - noise
    for j in range(X.shape[1]):
        r += X[i, j] * beta[j]
    return r


@njit(cache=True, inline="always")
def _multiplicative_step(u, v, beta, total, g, c, signed):  # pragma: no cover - compiled
    """u <- u - c g * u, v <- v + c g * v, beta = u*u - v*v (or u*u), total += beta."""
    for j in range(u.shape[0]):
        a = c * g[j]
        u[j] -= a * u[j]
        if signed:
            v[j] += a * v[j]
            beta[j] = u[j] * u[j] - v[j] * v[j]
        else:
            beta[j] = u[j] * u[j]
        total[j] += beta[j]


@njit(cache=True)
def run_block(X, y, idx, eps, delta, two_gamma, signed, u, v, beta, total, step0,
              ck_steps, ck_pos, ck_total, ck_beta):  # pragma: no cover - compiled
    """Run ``idx.shape[0]`` steps in place; return (steps done, next checkpoint position).

    Step s uses the batch ``idx[s]`` and label noise ``delta * eps[s]``:
        r_b = <x_b, beta> - y_b - delta eps_b,  g = (1/B) sum_b r_b x_b,
        u <- u - 2 gamma g * u,   v <- v + 2 gamma g * v,   beta = u*u - v*v (or u*u).
    ``total`` accumulates sum_s beta_s; at global step ``ck_steps[k]`` it and beta are copied to
    row k of ``ck_total`` / ``ck_beta``. Fewer steps done than asked means a diverged residual.
    """
    n_steps, batch = idx.shape
    grad = np.zeros(X.shape[1])
    for s in range(n_steps):
        if batch == 1:  # the hot path: g = r x_i, no gradient buffer
            r = _residual(X, y, beta, idx[s, 0], delta * eps[s, 0])
            if not abs(r) < DIVERGED:
                return s, ck_pos
            _multiplicative_step(u, v, beta, total, X[idx[s, 0]], two_gamma * r, signed)
        else:
            grad[:] = 0.0
            for b in range(batch):
                i = idx[s, b]
                r = _residual(X, y, beta, i, delta * eps[s, b])
                if not abs(r) < DIVERGED:
                    return s, ck_pos
                for j in range(grad.shape[0]):
                    grad[j] += r * X[i, j]
            _multiplicative_step(u, v, beta, total, grad, two_gamma / batch, signed)
        t = step0 + s + 1
        while ck_pos < ck_steps.shape[0] and ck_steps[ck_pos] == t:
            ck_total[ck_pos] = total
            ck_beta[ck_pos] = beta
            ck_pos += 1
    return n_steps, ck_pos
