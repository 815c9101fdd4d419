"""DiagonalLinearNet: closed forms, and a torch SGD loop that matches the simulator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noisereg._seeding import numpy_generator
from noisereg.dln import label_noise_sgd
from noisereg.dln.simulator import iter_draws
from noisereg.models import DiagonalLinearNet


def test_initialisation_and_beta() -> None:
    signed = DiagonalLinearNet(4, init_scale=0.3)
    assert torch.equal(signed.beta, torch.zeros(4))
    assert [name for name, _ in signed.named_parameters()] == ["u", "v"]
    positive = DiagonalLinearNet(4, parametrization="u2", init_scale=0.3)
    torch.testing.assert_close(positive.beta, torch.full((4,), 0.09))
    assert [name for name, _ in positive.named_parameters()] == ["u"]
    with torch.no_grad():
        signed.u.copy_(torch.tensor([1.0, 2.0, 0.0, 1.0]))
        signed.v.copy_(torch.tensor([0.0, 1.0, 2.0, 1.0]))
    torch.testing.assert_close(signed.beta, torch.tensor([1.0, 3.0, -4.0, 0.0]))
    X = torch.arange(8.0).reshape(2, 4)
    torch.testing.assert_close(signed(X), X @ torch.tensor([1.0, 3.0, -4.0, 0.0]))


def test_gradient_is_the_multiplicative_closed_form() -> None:
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(5, generator=gen, dtype=torch.float64)
    net = DiagonalLinearNet(3, init_scale=0.7).double()
    with torch.no_grad():
        net.u.mul_(torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
    loss = 0.5 * ((net(X) - y) ** 2).mean()
    loss.backward()
    grad_beta = X.T @ (X @ net.beta.detach() - y) / 5  # d loss / d beta
    torch.testing.assert_close(net.u.grad, 2 * net.u.detach() * grad_beta)
    torch.testing.assert_close(net.v.grad, -2 * net.v.detach() * grad_beta)


def test_torch_sgd_on_noisy_labels_matches_the_simulator() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 10))
    y = X[:, :2] @ np.array([1.0, -1.0])
    gamma, delta, steps = 0.02, 0.5, 150
    (idx, eps), = iter_draws(numpy_generator(7, "label-noise"), steps, 6, 1, "rademacher")
    net = DiagonalLinearNet(10, init_scale=0.4).double()
    opt = torch.optim.SGD(net.parameters(), lr=gamma)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for i, e in zip(idx[:, 0], eps[:, 0]):
        opt.zero_grad()
        loss = 0.5 * (net(Xt[i]) - (yt[i] + delta * e)) ** 2
        loss.backward()
        opt.step()
    sim = label_noise_sgd(X, y, step_size=gamma, delta=delta, steps=steps, init_scale=0.4, seed=7)
    np.testing.assert_allclose(net.beta.detach().numpy(), sim.beta_last, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"d": 0}, "d must be in"), ({"d": 3, "parametrization": "uv"}, "parametrization"),
     ({"d": 3, "init_scale": 0.0}, "init_scale must be > 0")],
)
def test_bad_input(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        DiagonalLinearNet(**kwargs)
