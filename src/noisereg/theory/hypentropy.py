"""The interpolator gradient flow finds on a diagonal linear network (Woodworth et al. 2020).

Gradient flow on beta = u*u - v*v from u = v = alpha converges to

    argmin_beta Q_alpha(beta)  s.t.  X beta = y,
    Q_alpha(beta) = sum_j 2 alpha^2 - sqrt(4 alpha^4 + beta_j^2)
                          + beta_j arcsinh(beta_j / (2 alpha^2)),

(small alpha ~ L1, large alpha ~ L2) whose KKT conditions are beta = 2 alpha^2 sinh(X^T nu),
X beta = y. On beta = u*u from u = alpha the limit is beta = alpha^2 exp(X^T nu), X beta = y
(a relative entropy, beta >= 0). The dual variable nu minimises the convex function
F(nu) = sum_j P(X^T nu)_j - y^T nu with P' the link (2 alpha^2 sinh or alpha^2 exp); it is
found by damped Newton steps, the Hessian being X diag(P'') X^T.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from noisereg._validate import as_design, check_choice, check_int, check_positive

Parametrization = Literal["u2-v2", "u2"]
_FAILED = ("hypentropy_interpolator did not converge: X must have full row rank and (for 'u2') "
           "a non-negative interpolator must exist")


def _link(z: np.ndarray, a2: float, parametrization: str) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """P(z), P'(z) = beta(z), P''(z) for the two parametrizations (a2 = alpha^2)."""
    if parametrization == "u2-v2":
        return 2 * a2 * np.cosh(z), 2 * a2 * np.sinh(z), 2 * a2 * np.cosh(z)
    e = a2 * np.exp(z)
    return e, e, e


def hypentropy_interpolator(X: np.ndarray, y: np.ndarray, init_scale: float,
                            parametrization: Parametrization = "u2-v2", *,
                            tol: float = 1e-12, max_iter: int = 500) -> np.ndarray:
    """argmin Q_alpha(beta) subject to X beta = y, alpha = ``init_scale`` (see module docstring).

    Requires X of full row rank (n <= d); for ``"u2"`` a non-negative interpolator must exist.
    Stops when ||X beta - y||_inf <= tol * max(1, ||y||_inf); ValueError if that fails.

    Small alpha gives the minimum-L1 interpolator of x = (1, 2), y = 2, large alpha the
    minimum-L2 one (0.4, 0.8):

    >>> import numpy as np
    >>> from noisereg.theory import hypentropy_interpolator
    >>> X, y = np.array([[1.0, 2.0]]), np.array([2.0])
    >>> hypentropy_interpolator(X, y, 1e-3).round(2)
    array([0., 1.])
    >>> hypentropy_interpolator(X, y, 10.0).round(2)
    array([0.4, 0.8])
    """
    X, y = as_design(X, y)
    alpha = check_positive("init_scale", init_scale)
    check_choice("parametrization", parametrization, ("u2-v2", "u2"))
    tol = check_positive("tol", tol)
    max_iter = check_int("max_iter", max_iter, low=1)
    a2 = alpha**2
    target = tol * max(1.0, float(np.abs(y).max()))
    nu = np.zeros(X.shape[0])

    def objective(nu: np.ndarray) -> float:
        with np.errstate(over="ignore"):
            return float(_link(X.T @ nu, a2, parametrization)[0].sum() - y @ nu)

    value = objective(nu)
    for _ in range(max_iter):
        _, beta, curvature = _link(X.T @ nu, a2, parametrization)
        grad = X @ beta - y
        if np.abs(grad).max() <= target:
            return beta
        try:
            step = np.linalg.solve((X * curvature) @ X.T, -grad)
        except np.linalg.LinAlgError:  # rank-deficient X, or curvature underflow (infeasible)
            raise ValueError(_FAILED) from None
        slope = float(grad @ step)
        t = 1.0
        new_value = objective(nu + step)
        # Below rounding error of F the Newton decrement is tiny: take the full step.
        if -slope > 1e-10 * (1.0 + abs(value)):
            while new_value > value + 1e-4 * t * slope:
                t /= 2
                if t < 1e-12:
                    raise ValueError(_FAILED)
                new_value = objective(nu + t * step)
        nu, value = nu + t * step, new_value
    raise ValueError(_FAILED)
