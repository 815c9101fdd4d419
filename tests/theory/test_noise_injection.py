"""Closed forms of noise injection against Monte Carlo of PerturbedOptimizer's own noise,
torch.func Hessians, scikit-learn's Lasso and the optimality conditions of the nuclear norm."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.linear_model import Lasso
from torch import nn
from torch.func import functional_call, hessian

from noisereg.diagnostics.smoothing import smoothed_loss
from noisereg.models.diagonal import DiagonalLinearNet
from noisereg.optim import PerturbedOptimizer
from noisereg.theory.noise_injection import (
    diagonal_net_smoothed_loss,
    effective_regularizer,
    group_lasso_penalty,
    group_net_smoothed_loss,
    lasso_weights,
    linear_net_smoothed_loss,
    nuclear_norm_objective,
    nuclear_norm_solution,
    singular_value_threshold,
    two_layer_linear_net,
)

SAMPLES = 20000


pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64)


def half_mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||y - f||^2 / (2n), summed over output dimensions."""
    return (out - target).pow(2).sum() / (2 * out.shape[0])


def _diag_net(d: int, seed: int) -> DiagonalLinearNet:
    net = DiagonalLinearNet(d).double()
    with torch.no_grad():
        net.u.copy_(_randn(d, seed=seed))
        net.v.copy_(_randn(d, seed=seed + 1))
    return net


class GroupNet(nn.Module):
    """Phi = sum_j v_j X_j w_j on inputs of J groups of k columns."""

    def __init__(self, groups: int, k: int, seed: int) -> None:
        super().__init__()
        self.v = nn.Parameter(_randn(groups, seed=seed))
        self.w = nn.Parameter(_randn(groups, k, seed=seed + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = x.reshape(x.shape[0], *self.w.shape)
        return torch.einsum("njk,jk,j->n", xs, self.w, self.v)


def _assert_monte_carlo_matches(estimate, exact: float, alternative: float) -> None:
    """The closed form is within 4 standard errors; the alternative (the closed form without
    its sigma^4 term) is rejected, so the test has the power to tell them apart."""
    assert abs(estimate.value - exact) < 4 * estimate.stderr, (estimate, exact)
    assert abs(estimate.value - alternative) > 6 * estimate.stderr, (estimate, alternative)


# ----------------------------------------------------------------------------- exact R_sigma


@pytest.mark.parametrize("mode", ["global", "layerwise"])
def test_diagonal_net_smoothed_loss_is_exact(mode):
    X, y, sigma = _randn(30, 6, seed=1), _randn(30, seed=2), 0.5
    net = _diag_net(6, seed=3)
    estimate = smoothed_loss(net, half_mse, X, y, sigma=sigma, samples=SAMPLES, mode=mode)
    args = (X, y, net.u.detach(), net.v.detach(), sigma)
    exact = float(diagonal_net_smoothed_loss(*args, mode=mode))
    _assert_monte_carlo_matches(estimate, exact,
                                float(diagonal_net_smoothed_loss(*args, exact=False)))


@pytest.mark.parametrize("mode", ["global", "layerwise"])
def test_linear_net_smoothed_loss_is_exact(mode):
    X, Y, sigma = _randn(20, 4, seed=4), _randn(20, 3, seed=5), 0.5
    net = two_layer_linear_net(4, 12, 3, seed=6).double()
    estimate = smoothed_loss(net, half_mse, X, Y, sigma=sigma, samples=SAMPLES // 4, mode=mode)
    args = (X, Y, net[0].weight.detach(), net[1].weight.detach(), sigma)
    exact = float(linear_net_smoothed_loss(*args, mode=mode))
    if mode == "global":
        _assert_monte_carlo_matches(estimate, exact,
                                    float(linear_net_smoothed_loss(*args, exact=False)))
    else:  # layer-wise: no sigma^4 term at all; the global value is rejected instead
        _assert_monte_carlo_matches(estimate, exact, float(linear_net_smoothed_loss(*args)))


def test_group_net_smoothed_loss_is_exact():
    groups, k, sigma = 3, 4, 0.5
    X, y = _randn(25, groups * k, seed=7), _randn(25, seed=8)
    net = GroupNet(groups, k, seed=9)
    estimate = smoothed_loss(net, half_mse, X, y, sigma=sigma, samples=SAMPLES)
    Xs = list(X.reshape(25, groups, k).unbind(1))
    args = (Xs, y, net.v.detach(), list(net.w.detach()), sigma)
    _assert_monte_carlo_matches(estimate, float(group_net_smoothed_loss(*args)),
                                float(group_net_smoothed_loss(*args, exact=False)))


def test_perturbed_gradient_is_unbiased_for_the_smoothed_loss():
    """E[grad L(w + noise)] over the optimizer's steps = grad of the closed-form R_sigma."""
    X, y, sigma, steps = _randn(30, 5, seed=10), _randn(30, seed=11), 0.4, 6000
    net = _diag_net(5, seed=12)
    opt = PerturbedOptimizer(net.parameters(), torch.optim.SGD, sigma=sigma, lr=0.0)
    grads = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = half_mse(net(X), y)
        loss.backward()
        grads.append(torch.cat([net.u.grad, net.v.grad]))
        return loss

    for _ in range(steps):
        opt.step(closure)
    g = torch.stack(grads)
    u, v = net.u.detach().requires_grad_(), net.v.detach().requires_grad_()
    exact = torch.cat(torch.autograd.grad(diagonal_net_smoothed_loss(X, y, u, v, sigma), (u, v)))
    z = (g.mean(0) - exact) / (g.std(0) / math.sqrt(steps))
    assert float(z.abs().max()) < 4.5


# ----------------------------------------------------------------------------- minimisers


def test_diagonal_net_effective_objective_is_minimised_at_sklearns_lasso():
    """Unit columns: min over (u, v) of R_eff gives beta = Lasso(alpha = 2 sigma^2)."""
    n, d, sigma = 40, 8, 0.2
    X = _randn(n, d, seed=13)
    X = X / X.pow(2).mean(0).sqrt()  # ||X_j||^2 / n = 1
    y = X[:, :3] @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3 * _randn(n, seed=14)
    torch.testing.assert_close(lasso_weights(X, sigma), torch.full((d,), 2 * sigma**2,
                                                                   dtype=torch.float64))
    ref = Lasso(alpha=2 * sigma**2, fit_intercept=False, tol=1e-12,
                max_iter=10**6).fit(X.numpy(), y.numpy()).coef_
    u = torch.full((d,), 0.5, dtype=torch.float64, requires_grad=True)
    v = torch.full((d,), 0.5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([u, v], lr=1, max_iter=5000, tolerance_grad=1e-13,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = diagonal_net_smoothed_loss(X, y, u, v, sigma, exact=False)
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    beta = (u * u - v * v).detach().numpy()
    assert abs(beta - ref).max() < 1e-4 and (ref == 0).any()


def test_singular_value_threshold_satisfies_the_prox_optimality_conditions():
    A, tau = _randn(6, 9, seed=15), 1.5
    Z = singular_value_threshold(A, tau)
    U, S, Vh = torch.linalg.svd(Z)
    r = int((S > 1e-9).sum())
    assert 0 < r < 6
    W = (A - Z) / tau - U[:, :r] @ Vh[:r]  # A - Z = tau (U1 V1^T + W)
    assert float(torch.linalg.matrix_norm(W, 2)) <= 1 + 1e-9
    assert float((U[:, :r].T @ W).abs().max()) < 1e-9 and float((W @ Vh[:r].T).abs().max()) < 1e-9


def _balanced(M: torch.Tensor, X: torch.Tensor, d1: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W2 W1 = M minimising d2 ||X W1^T||^2 + ||W2||^2 ||X||^2 (AM-GM on the singular values)."""
    d2 = M.shape[0]
    U, S, Vh = torch.linalg.svd(M @ X.T, full_matrices=False)  # Z = M X^T, d2 x n
    c = (d2 / float(X.pow(2).sum())) ** 0.25
    W2 = torch.zeros(d2, d1, dtype=M.dtype)
    W1 = torch.zeros(d1, X.shape[1], dtype=M.dtype)
    W2[:, :len(S)] = c * U * S.sqrt()
    W1[:len(S)] = (S.sqrt()[:, None] * Vh) @ torch.linalg.pinv(X).T / c
    return W1, W2


def test_nuclear_norm_solution_is_the_minimum_of_the_effective_objective():
    X, Y, sigma, d1 = _randn(15, 5, seed=16), _randn(15, 4, seed=17), 0.27, 6
    M = nuclear_norm_solution(X, Y, sigma)
    best = float(nuclear_norm_objective(X, Y, M, sigma))
    assert 0 < int((torch.linalg.svdvals(M) > 1e-8).sum()) < 4  # the penalty cut the rank
    gen = _gen(18)
    for _ in range(200):  # a convex objective: every nearby M is worse
        other = M + 1e-3 * torch.randn(M.shape, generator=gen, dtype=torch.float64)
        assert float(nuclear_norm_objective(X, Y, other, sigma)) > best
    W1, W2 = _balanced(M, X, d1)
    torch.testing.assert_close(W2 @ W1, M)
    r_eff = float(linear_net_smoothed_loss(X, Y, W1, W2, sigma, exact=False))
    assert abs(r_eff - best) < 1e-10
    for _ in range(20):  # any other factorization of M costs more
        G = torch.eye(d1, dtype=torch.float64) + 0.3 * torch.randn(d1, d1, generator=gen,
                                                                    dtype=torch.float64)
        other = float(linear_net_smoothed_loss(X, Y, G @ W1, W2 @ torch.linalg.inv(G), sigma,
                                               exact=False))
        assert other > best


def test_group_lasso_penalty_is_the_minimum_over_factorizations():
    Xs = [_randn(12, 3, seed=19 + j) for j in range(3)]
    betas = [_randn(3, seed=30 + j) for j in range(3)]
    sigma, n = 0.3, 12
    penalty = float(group_lasso_penalty(Xs, betas, sigma))
    zeros = torch.zeros(12, dtype=torch.float64)

    def sigma2_term(v: torch.Tensor) -> float:
        ws = [b / vj for b, vj in zip(betas, v)]
        r_eff = group_net_smoothed_loss(Xs, zeros, v, ws, sigma, exact=False)
        return float(r_eff) - float(half_mse(sum(vj * (X @ w) for vj, X, w in zip(v, Xs, ws)),
                                             zeros))

    # optimum v_j^2 = ||X_j beta_j|| / ||X_j||_F, then the sigma^2 term equals the penalty
    v_star = torch.stack([((X @ b).norm() / X.norm()).sqrt() for X, b in zip(Xs, betas)])
    assert abs(sigma2_term(v_star) - penalty) < 1e-12
    gen = _gen(40)
    for _ in range(50):
        assert sigma2_term(v_star * torch.exp(0.3 * torch.randn(3, generator=gen))) > penalty
    assert n == Xs[0].shape[0]


# ----------------------------------------------------------------------------- generic


def test_effective_regularizer_matches_the_closed_forms():
    X, sigma = _randn(20, 4, seed=41), 0.3
    diag = _diag_net(4, seed=42)
    zero_y = torch.zeros(20, dtype=torch.float64)
    u, v = diag.u.detach(), diag.v.detach()
    expected = diagonal_net_smoothed_loss(X, zero_y, u, v, sigma, exact=False) - half_mse(
        diag(X), zero_y)
    torch.testing.assert_close(effective_regularizer(diag, X, sigma), expected.detach())
    lin = two_layer_linear_net(4, 7, 3, seed=43).double()
    zero_Y = torch.zeros(20, 3, dtype=torch.float64)
    W1, W2 = lin[0].weight.detach(), lin[1].weight.detach()
    expected = linear_net_smoothed_loss(X, zero_Y, W1, W2, sigma, exact=False) - half_mse(
        lin(X), zero_Y)
    torch.testing.assert_close(effective_regularizer(lin, X, sigma), expected.detach())


def _hessian_trace(model: nn.Module, loss_fn, X: torch.Tensor, y: torch.Tensor) -> float:
    params = {k: p.detach() for k, p in model.named_parameters()}
    return float(sum(torch.diagonal(h.reshape(p.numel(), p.numel())).sum() for p, h in (
        (params[k], hessian(lambda q, k=k: loss_fn(
            functional_call(model, {**params, k: q}, (X,)), y))(params[k]))
        for k in params)))


def test_effective_regularizer_is_half_the_hessian_trace_at_interpolation():
    """With zero residual the squared loss's Hessian is its Gauss-Newton part."""
    X, sigma = _randn(10, 3, seed=44), 0.2
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    with torch.no_grad():
        for k, p in enumerate(model.parameters()):
            p.copy_(_randn(*p.shape, seed=50 + k))
        y = model(X)
    expected = sigma**2 / 2 * _hessian_trace(model, half_mse, X, y)
    assert abs(float(effective_regularizer(model, X, sigma).detach()) - expected) < 1e-10


def test_cross_entropy_regularizer_is_half_the_hessian_trace_of_a_linear_model():
    X, sigma = _randn(12, 4, seed=45), 0.3
    labels = torch.randint(3, (12,), generator=_gen(46))
    model = nn.Linear(4, 3).double()
    with torch.no_grad():
        model.weight.copy_(_randn(3, 4, seed=47))
        model.bias.copy_(_randn(3, seed=48))
    expected = sigma**2 / 2 * _hessian_trace(model, nn.functional.cross_entropy, X, labels)
    value = effective_regularizer(model, X, sigma, loss="cross_entropy")
    assert abs(float(value.detach()) - expected) < 1e-10


def test_effective_regularizer_is_differentiable_for_explicit_training():
    X, sigma = _randn(15, 4, seed=49), 0.3
    net = _diag_net(4, seed=50)
    effective_regularizer(net, X, sigma).backward()
    weights = lasso_weights(X, sigma)
    torch.testing.assert_close(net.u.grad, 2 * weights * net.u.detach())
    torch.testing.assert_close(net.v.grad, 2 * weights * net.v.detach())


def test_smoothed_loss_restores_the_weights_and_is_reproducible():
    X, y = _randn(10, 3, seed=51), _randn(10, seed=52)
    net = _diag_net(3, seed=53)
    before = [p.detach().clone() for p in net.parameters()]
    a = smoothed_loss(net, half_mse, X, y, sigma=0.1, samples=50, seed=2)
    b = smoothed_loss(net, half_mse, X, y, sigma=0.1, samples=50, seed=2)
    assert a == b and a.samples == 50 and a.stderr > 0
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))
    with pytest.raises(ValueError, match="samples"):
        smoothed_loss(net, half_mse, X, y, sigma=0.1, samples=1)
    with pytest.raises(ValueError, match="sigma"):
        effective_regularizer(net, X, -0.1)
    with pytest.raises(ValueError, match="mode"):
        diagonal_net_smoothed_loss(X, y, net.u, net.v, 0.1, mode="both")
