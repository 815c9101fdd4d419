"""The widening-valley oracles of anti-pgd-flat-minima: the smoothed loss against Monte Carlo,
its gradient descent against autograd, the flow against small-step descent, and AntiPGD's
z = w - xi against the descent on the smoothed loss."""

import numpy as np
import pytest
import torch

from noisereg.lab.experiments.anti_pgd_flat_minima import (
    Valley,
    smoothed_descent,
    smoothed_flow,
)
from noisereg.optim import AntiPGD

D, SIGMA = 4, 0.3


def _smoothed(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (v**2 + SIGMA**2) * (u.pow(2).sum() + D * SIGMA**2) / 2


def test_smoothed_loss_is_the_gaussian_average() -> None:
    gen = torch.Generator().manual_seed(0)
    u, v = torch.tensor([0.5, -1.0, 2.0, 0.1], dtype=torch.float64), torch.tensor(0.7)
    draws = 400_000
    eu = torch.randn(draws, D, generator=gen, dtype=torch.float64) * SIGMA
    ev = torch.randn(draws, generator=gen, dtype=torch.float64) * SIGMA
    mc = ((v + ev) ** 2 * (u + eu).pow(2).sum(1) / 2)
    assert float(_smoothed(u, v)) == pytest.approx(float(mc.mean()), abs=4 * float(mc.std()) /
                                                   draws**0.5)


def test_descent_recursion_is_gradient_descent_on_the_smoothed_loss() -> None:
    u = torch.full((D,), 1.3, dtype=torch.float64, requires_grad=True)
    v = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    lr, steps = 0.05, 50
    expected = [float(u.detach().pow(2).sum())]
    for _ in range(steps):
        gu, gv = torch.autograd.grad(_smoothed(u, v), (u, v))
        with torch.no_grad():
            u -= lr * gu
            v -= lr * gv
        expected.append(float(u.detach().pow(2).sum()))
    np.testing.assert_allclose(smoothed_descent(D, SIGMA, lr, D * 1.3**2, 0.8, steps), expected,
                               rtol=1e-12)


def test_flow_is_the_limit_of_small_steps() -> None:
    lr, steps = 1e-4, 20_000  # time 2
    times = lr * np.array([1, 5_000, 10_000, 20_000], dtype=float)
    descent = smoothed_descent(D, SIGMA, lr, 3.0, 1.0, steps)[[1, 5_000, 10_000, 20_000]]
    flow = smoothed_flow(D, SIGMA, float(descent[0]), float(1.0 * (1 - lr * (3.0 + D * SIGMA**2))),
                         times)
    np.testing.assert_allclose(flow, descent, rtol=2e-3)


def test_anti_pgd_z_takes_the_smoothed_descent_steps_in_the_mean() -> None:
    # Averaged over many seeds, ||u_z||^2 after a few steps matches the descent to a few
    # Monte-Carlo standard errors plus the effect of the steps' variance, which moves it by
    # ~ steps (2 lr sigma)^2 ||u||^2 either way (directly, and through E v^2 > (E v)^2 in the
    # rate of u): ~0.2% here with sigma = 0.1.
    sigma, lr, steps, seeds = 0.1, 0.05, 20, 400
    finals, starts = [], []
    for seed in range(seeds):
        model = Valley(D)
        opt = AntiPGD(model.parameters(), torch.optim.SGD, sigma=sigma, seed=seed, lr=lr)
        for step in range(steps):
            opt.zero_grad()
            model().backward()
            opt.step()
            if step == 0:
                with torch.no_grad():
                    starts.append((float((model.u - opt.xi(model.u)).pow(2).sum()),
                                   float(model.v - opt.xi(model.v))))
        finals.append(float((model.u.detach() - opt.xi(model.u)).pow(2).sum()))
    predicted = [smoothed_descent(D, sigma, lr, a, v, steps - 1)[-1] for a, v in starts]
    diff = np.asarray(finals) - np.asarray(predicted)
    variance = steps * (2 * lr * sigma) ** 2 * np.mean(predicted)
    assert abs(diff.mean()) < 4 * diff.std() / seeds**0.5 + variance
