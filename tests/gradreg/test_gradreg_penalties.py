"""PEGR and GR penalties against torch.func references, the identity PEGR = GR + per-example
gradient variance, and the regularized training objective."""

from __future__ import annotations

import pytest
import torch
from test_gradreg_norms import ce, conv1d, conv2d, data, mlp, seeded
from torch import nn
from torch.func import functional_call, grad, vmap

from noisereg.gradreg import (
    GR,
    PEGR,
    gr_penalty,
    loss_and_penalty,
    pegr_penalty,
    regularized_loss,
)

MODELS = {"mlp": mlp, "conv1d": conv1d, "conv2d": conv2d}


def func_penalties(model: nn.Module, x: torch.Tensor, t: torch.Tensor):
    """PEGR and GR written with torch.func only, as functions of the parameter dict."""

    def loss_one(p, xi, ti):
        return ce(functional_call(model, p, (xi.unsqueeze(0),)), ti.unsqueeze(0))[0]

    def pegr(p):
        grads = vmap(grad(loss_one), in_dims=(None, 0, 0))(p, x, t)
        return sum(g.flatten(1).square().sum(1) for g in grads.values()).mean()

    def gr(p):
        mean_grad = grad(lambda q: ce(functional_call(model, q, (x,)), t).mean())(p)
        return sum(g.square().sum() for g in mean_grad.values())

    return pegr, gr


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("backend", ["ghost", "vmap", "loop"])
def test_pegr_penalty_and_its_gradient_match_torch_func(kind: str, backend: str) -> None:
    model = seeded(MODELS[kind])
    x, t = data(kind, 6)
    params = dict(model.named_parameters())
    pegr, _ = func_penalties(model, x, t)
    detached = {k: v.detach() for k, v in params.items()}
    value = pegr_penalty(model, ce, x, t, backend=backend)
    torch.testing.assert_close(value, pegr(detached), rtol=1e-10, atol=0)
    expected = grad(pegr)(detached)
    got = torch.autograd.grad(value, list(params.values()))
    for name, g in zip(params, got):
        torch.testing.assert_close(g, expected[name], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("kind", list(MODELS))
def test_gr_penalty_and_its_gradient_match_torch_func(kind: str) -> None:
    model = seeded(MODELS[kind])
    x, t = data(kind, 6)
    params = dict(model.named_parameters())
    _, gr = func_penalties(model, x, t)
    detached = {k: v.detach() for k, v in params.items()}
    value = gr_penalty(model, ce, x, t)
    torch.testing.assert_close(value, gr(detached), rtol=1e-10, atol=0)
    expected = grad(gr)(detached)
    for name, g in zip(params, torch.autograd.grad(value, list(params.values()))):
        torch.testing.assert_close(g, expected[name], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("kind", list(MODELS))
def test_pegr_is_gr_plus_per_example_gradient_variance(kind: str) -> None:
    model = seeded(MODELS[kind])
    x, t = data(kind, 7)
    params = list(model.parameters())
    per_example = torch.stack([
        torch.cat([g.flatten() for g in torch.autograd.grad(ce(model(x[i:i + 1]),
                                                                t[i:i + 1]).sum(), params)])
        for i in range(len(x))])
    variance = (per_example - per_example.mean(0)).square().sum(1).mean()
    torch.testing.assert_close(pegr_penalty(model, ce, x, t),
                               gr_penalty(model, ce, x, t) + variance, rtol=1e-10, atol=0)


@pytest.mark.parametrize("penalty", ["pegr", "gr"])
@pytest.mark.parametrize("backend", ["auto", "vmap"])
def test_regularized_loss_gradient_is_loss_plus_lambda_penalty(penalty: str,
                                                               backend: str) -> None:
    model = seeded(conv1d)
    x, t = data("conv1d", 5)
    lam = 0.37
    params = dict(model.named_parameters())
    pegr, gr = func_penalties(model, x, t)

    def objective(p):
        return ce(functional_call(model, p, (x,)), t).mean() + lam * (pegr if penalty == "pegr"
                                                                       else gr)(p)

    detached = {k: v.detach() for k, v in params.items()}
    loss = regularized_loss(model, ce, x, t, lam=lam, penalty=penalty, backend=backend)
    torch.testing.assert_close(loss, objective(detached), rtol=1e-10, atol=0)
    expected = grad(objective)(detached)
    loss.backward()
    for name, p in params.items():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-8, atol=1e-12)


def test_lambda_zero_is_plain_training_and_parts_add_up() -> None:
    model = seeded(mlp)
    x, t = data("mlp", 4)
    plain = ce(model(x), t).mean()
    torch.testing.assert_close(regularized_loss(model, ce, x, t, lam=0.0), plain)
    data_loss, pen = loss_and_penalty(model, ce, x, t)
    torch.testing.assert_close(data_loss, plain)
    torch.testing.assert_close(pen, pegr_penalty(model, ce, x, t, backend="loop"))


@pytest.mark.parametrize("cls", [PEGR, GR])
def test_objective_classes_train_like_the_formula(cls: type) -> None:
    model, reference = seeded(mlp), seeded(mlp)
    x, t = data("mlp", 8)
    objective = cls(model, ce, 0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        objective(x, t).backward()
        opt.step()
    penalty = pegr_penalty if cls is PEGR else gr_penalty
    for _ in range(3):  # the same three steps by hand
        data_loss, pen = ce(reference(x), t).mean(), penalty(reference, ce, x, t)
        total = data_loss + 0.5 * pen
        grads = torch.autograd.grad(total, list(reference.parameters()))
        with torch.no_grad():
            for p, g in zip(reference.parameters(), grads):
                p -= 0.1 * g
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert objective.last_penalty == pytest.approx(pen.item(), rel=1e-10)
    assert objective.last_loss == pytest.approx(data_loss.item(), rel=1e-10)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, x, t: regularized_loss(m, ce, x, t, lam=-1.0), "lam must be >= 0"),
        (lambda m, x, t: regularized_loss(m, ce, x, t, lam=1.0, penalty="sam"),
         "penalty must be one of 'pegr', 'gr'"),
        (lambda m, x, t: regularized_loss(m, ce, x, t, lam=0.0, penalty="sam"),
         "penalty must be one of"),
        (lambda m, x, t: PEGR(m, ce, float("nan")), "lam must be a finite number"),
        (lambda m, x, t: GR(m, "ce", 1.0), "per_example_loss must be callable"),
        (lambda m, x, t: gr_penalty(m, lambda o, tt: ce(o, tt).sum(), x, t),
         "per_example_loss returned a scalar"),
    ],
)
def test_bad_input(call, message: str) -> None:
    x, t = data("mlp", 3)
    with pytest.raises((ValueError, TypeError), match=message):
        call(seeded(mlp), x, t)


def test_batchnorm_in_train_mode_is_fine_for_batch_level_objectives_only() -> None:
    model = seeded(conv2d)
    model[3].train()
    x, t = data("conv2d", 4)
    params = list(model.parameters())
    mean_grad = torch.autograd.grad(ce(model(x), t).mean(), params)
    torch.testing.assert_close(gr_penalty(model, ce, x, t),
                               sum(g.square().sum() for g in mean_grad), rtol=1e-10, atol=0)
    torch.testing.assert_close(regularized_loss(model, ce, x, t, lam=0.0), ce(model(x), t).mean())
    with pytest.raises(ValueError, match="uses batch statistics"):
        regularized_loss(model, ce, x, t, lam=0.1)
