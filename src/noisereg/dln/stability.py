"""The largest step sizes at which gradient steps on a diagonal linear network can be stable.

On beta = u*u - v*v the loss (1/2)(<x, beta> - y)^2 has, near a solution, the Hessian
4 (x * w)(x * w)^T in u (and in v) with w^2 = u^2 + v^2, so a step of size gamma is stable when
gamma * 4 sum_j x_j^2 w_j^2 < 2 (the notes' "gamma ||x_i||^2 max(u^2 + v^2) < 1", made exact
for one example). With unit columns (E x_ij^2 = 1), w_j^2 ~ |beta*_j| on the k coordinates of
the support and 2 alpha^2 (the initialization) elsewhere:

* label-noise SGD, one example per step: gamma (k max|beta*| + 2 alpha^2 d) < 1/2;
* gradient descent, the mean over examples: gamma (s_k max|beta*| + s_d 2 alpha^2) < 1/2 with
  s_m = (1 + sqrt(m / n))^2 the top eigenvalue of X_M^T X_M / n for m Gaussian columns
  (Marchenko-Pastur).

Label noise of size delta multiplies u_j by 1 - 2 gamma delta x_ij eps per step on average:
E log|1 - a eps| = log(1 - a^2) / 2 grows once a > sqrt(2), i.e. gamma delta |x| > 0.7.

A configuration is refused when it is 4 times past an edge (gamma delta > 1 for the noise): the
runs there diverge within a few steps. Between the edge and the limit a run may still diverge;
the simulator then raises.
"""

from __future__ import annotations

import math

LIMIT = 2.0  # 4x the linear-stability edge 1/2
NOISE_LIMIT = 1.0  # gamma delta, past the growth threshold ~0.7 of the multiplicative noise


def check_label_noise_step(step_size: float, *, n: int, d: int, k: int, beta_max: float,
                           init_scale: float, delta: float, name: str = "step_size") -> None:
    """Refuse a label-noise SGD step size that cannot be stable (see the module docstring)."""
    edge = step_size * (k * beta_max + 2 * init_scale**2 * d)
    if edge > LIMIT:
        raise ValueError(
            f"{name}={step_size:g} is too large for label-noise SGD on n={n}, d={d}: "
            f"{name} (k max|beta*| + 2 alpha^2 d) = {edge:.3g} must be <= {LIMIT:g} (4x the "
            f"linear-stability edge 1/2), i.e. {name} <= {step_size * LIMIT / edge:.3g}")
    if step_size * delta > NOISE_LIMIT:
        raise ValueError(
            f"{name} * delta = {step_size * delta:.3g} must be <= {NOISE_LIMIT:g}: larger label "
            f"noise makes every coordinate grow (i.e. delta <= {NOISE_LIMIT / step_size:.3g})")


def check_gd_step(step_size: float, *, n: int, d: int, k: int, beta_max: float,
                  init_scale: float, extra: float = 0.0, name: str = "step_size") -> None:
    """Refuse a gradient-descent step size that cannot be stable; ``extra`` adds curvature
    (e.g. sigma^2 of an explicit noise regularizer)."""
    def spread(m: int) -> float:
        return (1 + math.sqrt(m / n)) ** 2

    edge = step_size * (spread(k) * beta_max + spread(d) * 2 * init_scale**2 + extra)
    if edge > LIMIT:
        raise ValueError(
            f"{name}={step_size:g} is too large for gradient descent on n={n}, d={d}: "
            f"{name} times the curvature = {edge:.3g} must be <= {LIMIT:g} (4x the "
            f"linear-stability edge 1/2), i.e. {name} <= {step_size * LIMIT / edge:.3g}")
