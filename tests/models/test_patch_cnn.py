"""PatchCNN against its defining formula, the closed form of the notes for ||grad l_i||^2, and
the closed-form objective gradient against autograd."""

from __future__ import annotations

import pytest
import torch

from noisereg.data import signal_noise
from noisereg.gradreg import per_example_sq_grad_norms, regularized_loss, uncovered_modules
from noisereg.models import PatchCNN
from noisereg.models.patch_cnn import closed_form_objective, logistic_losses

F64 = torch.float64


def setup(flip_prob: float = 0.0, q: float = 3.0, sigma0: float = 0.3):
    data = signal_noise(7, 40, 3.0, 1.0, flip_prob, seed=2, dtype=F64)
    return data, PatchCNN(40, 3, q, sigma0=sigma0, seed=1, dtype=F64)


def test_forward_is_the_two_layer_formula() -> None:
    data, model = setup()
    w = model.weight.detach()
    expected = torch.zeros(data.n, dtype=F64)
    for i in range(data.n):
        for j, sign in ((0, 1.0), (1, -1.0)):  # f = F_{+1} - F_{-1}
            for r in range(model.m):
                for p in range(2):
                    z = torch.dot(w[j * model.m + r], data.x[i, p])
                    expected[i] += sign / model.m * torch.clamp(z, min=0) ** 3
    torch.testing.assert_close(model(data.x), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["ghost", "vmap", "loop"])
def test_per_example_norms_match_the_closed_form_of_the_notes(backend: str) -> None:
    # mu orthogonal to every xi_i: ||grad l_i||^2 = (l'_i^2 / m^2) sum_{j,r}
    #   [sigma'(<w_jr, y_i mu>)^2 ||mu||^2 + sigma'(<w_jr, xi_i>)^2 ||xi_i||^2], sigma' = 3 relu^2
    data, model = setup()
    assert float((data.xi @ data.mu).abs().max()) < 1e-12
    w = model.weight.detach()
    f = model(data.x).detach()
    l1 = -data.y * torch.sigmoid(-data.y * f)

    def d1(z: torch.Tensor) -> torch.Tensor:
        return 3 * z.clamp(min=0) ** 2

    signal = d1(w @ data.mu[:, None] * data.clean_y[None]).square().sum(0) * data.mu.square().sum()
    noise = (d1(w @ data.xi.T).square() * data.xi.square().sum(1)).sum(0)
    expected = l1.square() / model.m**2 * (signal + noise)
    got = per_example_sq_grad_norms(model, logistic_losses, data.x, data.y, backend=backend)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=0)


@pytest.mark.parametrize("penalty", ["pegr", "gr"])
@pytest.mark.parametrize("q", [2.0, 3.0, 4.5])
def test_closed_form_objective_matches_autograd(penalty: str, q: float) -> None:
    data, model = setup(flip_prob=0.3, q=q)
    x = data.x.reshape(-1, data.d)
    gram = (x @ x.T).reshape(data.n, 2, data.n, 2)
    scales = torch.tensor([1.0, 1.7], dtype=F64)  # two filter sets at once, two lambdas
    lams = torch.tensor([0.0, 0.4], dtype=F64)
    pre = torch.einsum("kd,ipd->kip", model.weight.detach(), data.x)
    values, coefs = closed_form_objective(scales[:, None, None, None] * pre, data.y, gram,
                                          model.second, q, lams, penalty)
    for scale, lam, value, coef in zip(scales, lams, values, coefs):
        with torch.no_grad():
            model.weight.copy_(scale * model.initial)
        model.zero_grad()
        loss = regularized_loss(model, logistic_losses, data.x, data.y, lam=float(lam),
                                penalty=penalty)
        loss.backward()
        torch.testing.assert_close(value, loss.detach(), rtol=1e-10, atol=0)
        # Roundoff scales with the largest entries (up to ~1e6 at q = 4.5, scale 1.7), not
        # with an entry that cancels: an absolute tolerance relative to the largest.
        grad = model.weight.grad
        torch.testing.assert_close(coef.reshape(2 * model.m, -1) @ x, grad, rtol=1e-9,
                                   atol=1e-12 * float(grad.abs().max()))


def test_initialisation_is_seeded_and_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a, b, c = (PatchCNN(50, 4, 3, sigma0=0.5, seed=s) for s in (3, 3, 4))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    assert torch.equal(a.initial, a.weight.detach())
    torch.testing.assert_close(a.second, torch.tensor([0.25] * 4 + [-0.25] * 4))
    assert [n for n, p in a.named_parameters()] == ["filters.weight"]  # second layer fixed
    assert abs(float(a.initial.std()) - 0.5) < 0.05  # sigma_0, 400 draws
    assert not uncovered_modules(a)  # the ghost backend covers it (3-D Linear input)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"q": 1.5}, "q must be >= 2"), ({"m": 0}, "m must be in"), ({"d": 2.5}, "d must be an"),
     ({"sigma0": -1.0}, "sigma0 must be >= 0")],
)
def test_bad_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PatchCNN(**{"d": 10, "m": 2, "q": 3.0, **kwargs})


def test_bad_input_shape() -> None:
    with pytest.raises(ValueError, match=r"x must have shape \[n, 2, 10\]"):
        PatchCNN(10, 2)(torch.zeros(4, 3, 10))
    with pytest.raises(ValueError, match="penalty must be one of"):
        closed_form_objective(torch.zeros(4, 1, 2), torch.ones(1), torch.zeros(1, 2, 1, 2),
                              torch.ones(4), 3.0, 1.0, "sam")
