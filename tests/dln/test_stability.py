"""The step-size limits of validation: the curvature they use is the Hessian's, and a step size
past a limit diverges in the simulator for every seed tried."""

import pytest
import torch

from noisereg.dln import gradient_descent, label_noise_sgd, sparse_regression
from noisereg.dln.stability import check_gd_step, check_label_noise_step

N, D, K = 15, 30, 3


def test_curvature_is_the_top_eigenvalue_of_one_examples_hessian() -> None:
    """At a zero residual the Hessian of (1/2)(<x, u*u - v*v> - y)^2 in (u, v) has top
    eigenvalue 4 sum_j x_j^2 (u_j^2 + v_j^2), the quantity the limits bound."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(D, generator=gen, dtype=torch.float64)
    u, v = torch.rand(2, D, generator=gen, dtype=torch.float64)
    y = float(x @ (u * u - v * v))

    def loss(w: torch.Tensor) -> torch.Tensor:
        a, b = w[:D], w[D:]
        return 0.5 * (x @ (a * a - b * b) - y) ** 2

    hessian = torch.autograd.functional.hessian(loss, torch.cat([u, v]))
    top = torch.linalg.eigvalsh(hessian)[-1]
    assert float(top) == pytest.approx(float(4 * (x**2 * (u**2 + v**2)).sum()), rel=1e-12)


def _limit(check, **kw) -> float:
    """The largest step size ``check`` accepts, by bisection."""
    lo, hi = 1e-9, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        try:
            check(mid, **kw)
            lo = mid
        except ValueError:
            hi = mid
    return lo


@pytest.mark.parametrize("alpha", [0.01, 1.0])
def test_past_the_label_noise_limit_every_seed_diverges(alpha) -> None:
    gamma = 1.05 * _limit(check_label_noise_step, n=N, d=D, k=K, beta_max=1.0,
                          init_scale=alpha, delta=0.5)
    for seed in range(4):
        X, y, _ = sparse_regression(N, D, K, seed=seed)
        with pytest.raises(ValueError, match="diverged"):
            label_noise_sgd(X, y, step_size=gamma, delta=0.5, steps=5000, init_scale=alpha,
                            seed=seed)


def test_label_noise_past_the_noise_limit_diverges() -> None:
    delta = 40.0
    gamma = 1.05 * _limit(check_label_noise_step, n=N, d=D, k=K, beta_max=1.0,
                          init_scale=0.01, delta=delta)
    assert gamma * delta == pytest.approx(1.05, rel=1e-6)  # the noise limit decides here
    for seed in range(4):
        X, y, _ = sparse_regression(N, D, K, seed=seed)
        with pytest.raises(ValueError, match="diverged"):
            label_noise_sgd(X, y, step_size=gamma, delta=delta, steps=5000, init_scale=0.01,
                            seed=seed)


@pytest.mark.parametrize("alpha", [0.01, 1.0])
def test_past_the_gradient_descent_limit_every_seed_diverges(alpha) -> None:
    gamma = 1.05 * _limit(check_gd_step, n=N, d=D, k=K, beta_max=1.0, init_scale=alpha)
    for seed in range(4):
        X, y, _ = sparse_regression(N, D, K, seed=seed)
        with pytest.raises(ValueError, match="diverged"):
            gradient_descent(X, y, step_size=gamma, steps=5000, init_scale=alpha)


def test_messages_name_the_field_and_its_largest_value() -> None:
    with pytest.raises(ValueError, match=r"step_size=10 is too large .* step_size <= 0\.0\d"):
        check_label_noise_step(10.0, n=40, d=100, k=5, beta_max=1.0, init_scale=0.3, delta=2.0)
    with pytest.raises(ValueError, match=r"explicit_lr=5 is too large for gradient descent"):
        check_gd_step(5.0, n=40, d=30, k=3, beta_max=1.0, init_scale=0.5, extra=0.04,
                      name="explicit_lr")
