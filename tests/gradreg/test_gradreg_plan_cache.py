"""The validation of a model is cached per configuration (issue 12): a change of the model after
a first call (train/eval, freezing, swapping a module) is seen by the next call, whose norms
match a per-example loop written in the tests, and an unchanged model is not validated again."""

from __future__ import annotations

import warnings

import pytest
import torch
from test_gradreg_norms import ce, conv2d, data, mlp, reference, seeded
from torch import nn

import noisereg.gradreg._plan as plan_module
from noisereg.gradreg import PEGR, FallbackWarning, per_example_sq_grad_norms

BACKENDS = ("ghost", "vmap", "loop", "auto")


def norms(model: nn.Module, x, t, backend: str = "auto") -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        return per_example_sq_grad_norms(model, ce, x, t, backend=backend)


def loop(model: nn.Module, x, t) -> torch.Tensor:
    return reference(model, x, t).detach()


class Affine(nn.Module):
    """out = x * weight per feature: a layer without a ghost rule."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_switched_to_train_mode_after_a_first_call_is_refused_again(backend) -> None:
    model = seeded(conv2d)  # its BatchNorm2d (index 3) is in eval mode
    x, t = data("conv2d", 3)
    torch.testing.assert_close(norms(model, x, t, backend), loop(model, x, t), rtol=1e-9, atol=0)
    for switch in (lambda: model[3].train(), lambda: model.train()):
        switch()
        with pytest.raises(ValueError, match=r"3 \(BatchNorm2d\) uses batch statistics"):
            norms(model, x, t, backend)
        model.eval()
        torch.testing.assert_close(norms(model, x, t, backend), loop(model, x, t), rtol=1e-9,
                                   atol=0)


def test_freezing_and_unfreezing_after_a_first_pegr_step_gives_the_loops_objective() -> None:
    """The PEGR objective and its gradient follow the parameters that require grad now."""
    model = seeded(mlp)
    x, t = data("mlp", 5)
    objective = PEGR(model, ce, lam=0.5)
    objective(x, t)
    for change in (lambda: model[0].requires_grad_(False),
                   lambda: model[0].weight.requires_grad_(True),
                   lambda: model.requires_grad_(True)):
        change()
        trainable = [p for p in model.parameters() if p.requires_grad]
        got = torch.autograd.grad(objective(x, t), trainable)
        expected = ce(model(x), t).mean() + 0.5 * reference(model, x, t).mean()
        torch.testing.assert_close(objective.last_penalty,
                                   float(loop(model, x, t).mean()), rtol=1e-9, atol=0)
        for g, e in zip(got, torch.autograd.grad(expected, trainable), strict=True):
            torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-12)
        for backend in BACKENDS:
            torch.testing.assert_close(norms(model, x, t, backend), loop(model, x, t),
                                       rtol=1e-9, atol=0)


def test_a_swapped_module_is_seen() -> None:
    model = seeded(mlp)
    x, t = data("mlp", 4)
    norms(model, x, t, "ghost")
    model[2] = seeded(lambda: nn.Linear(8, 3), seed=5)
    torch.testing.assert_close(norms(model, x, t, "ghost"), loop(model, x, t), rtol=1e-9, atol=0)
    model[1] = Affine(8).double()  # no ghost rule: ghost refuses, auto still matches the loop
    with pytest.raises(ValueError, match=r"1 \(Affine\): no ghost rule"):
        norms(model, x, t, "ghost")
    torch.testing.assert_close(norms(model, x, t, "auto"), loop(model, x, t), rtol=1e-9, atol=0)
    model[1] = nn.BatchNorm1d(8).double()  # batch statistics
    with pytest.raises(ValueError, match=r"1 \(BatchNorm1d\) uses batch statistics"):
        norms(model, x, t, "auto")


def test_a_cached_plan_whose_modules_died_is_rebuilt(monkeypatch) -> None:
    """CPython may give a new module the id of a dead one, so that a key of ids matches a stale
    plan; a key blind to identities stands in for that coincidence here."""
    monkeypatch.setattr(plan_module, "_key", lambda model: tuple(
        (type(m), m.training) for m in model.modules()))
    model = seeded(mlp)
    model.insert(1, nn.BatchNorm1d(8, affine=False).double().eval())
    with torch.no_grad():
        model[1].running_var.fill_(1.5)
    x, t = data("mlp", 4)
    torch.testing.assert_close(norms(model, x, t, "ghost"), loop(model, x, t), rtol=1e-9, atol=0)
    # the same type and mode, but it normalizes with batch statistics even in eval mode
    model[1] = nn.BatchNorm1d(8, affine=False, track_running_stats=False).double().eval()
    with pytest.raises(ValueError, match=r"1 \(BatchNorm1d\) uses batch statistics"):
        norms(model, x, t, "ghost")


def test_an_unchanged_model_is_validated_once_and_walked_once_per_step(monkeypatch) -> None:
    model = seeded(mlp)
    x, t = data("mlp", 4)
    built, walks = [], []
    init, named_modules = plan_module.Plan.__init__, nn.Module.named_modules

    def counting_init(self, m: nn.Module) -> None:
        built.append(m)
        init(self, m)

    def counting_walk(self, *args, **kwargs):
        if self is model:
            walks.append(1)
        return named_modules(self, *args, **kwargs)

    monkeypatch.setattr(plan_module.Plan, "__init__", counting_init)
    monkeypatch.setattr(nn.Module, "named_modules", counting_walk)
    objective = PEGR(model, ce, lam=0.1)
    objective(x, t)  # validated, and ghost checked against the loop once
    assert len(built) == 1
    walks.clear()
    for _ in range(3):
        objective(x, t).backward()
    assert len(built) == 1 and len(walks) == 3  # one walk per step: the cache key
    for mode in ("eval", "train", "eval", "train"):  # the two configurations are both kept
        getattr(model, mode)()
        objective(x, t)
    assert len(built) == 2
