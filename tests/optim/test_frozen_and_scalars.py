"""What a model brings: frozen parameters are skipped as torch optimizers skip them, and sigma
may be a NumPy or 0-d tensor scalar."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from noisereg.optim import AntiPGD, PerturbedOptimizer

SGD = torch.optim.SGD


def _frozen_first_layer(problem) -> tuple[nn.Module, list[nn.Parameter]]:
    model = problem.model()
    frozen = list(model.linears[0].parameters())
    for p in frozen:
        p.requires_grad_(False)
    return model, frozen


def _seen(model: nn.Module, opt: PerturbedOptimizer, step: int) -> list[torch.Tensor]:
    with opt.perturbed(step):
        return [p.detach().clone() for p in model.parameters()]


def test_pgd_never_perturbs_frozen_parameters_and_keeps_the_others_noise(problem):
    """Global noise: the trainable tensors get exactly the noise they get when nothing is
    frozen (parameter indices key the noise), the frozen ones none."""
    model, frozen = _frozen_first_layer(problem)
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.3, seed=4, lr=0.1)
    free = problem.model()
    reference = PerturbedOptimizer(free.parameters(), SGD, sigma=0.3, seed=4, lr=0.1)
    w = problem.params(model)
    for step in range(3):
        got, want = _seen(model, opt, step), _seen(free, reference, step)
        assert problem.same(got[:2], w[:2])  # the frozen layer: not perturbed
        assert problem.same(got[2:], want[2:])
    for _ in range(3):
        opt.step(problem.closure(model, opt))
    assert problem.same([p.detach() for p in frozen], w[:2])
    assert not problem.same(problem.params(model)[2:], w[2:])


def test_layerwise_noise_counts_only_trainable_groups(problem):
    """M = 2 trainable layers of 3 with groups='module': each step perturbs one of them with
    std sqrt(2) sigma; unfreezing brings the layer back (M = 3)."""
    model, frozen = _frozen_first_layer(problem)
    opt = PerturbedOptimizer(model.named_parameters(), SGD, sigma=0.1, mode="layerwise",
                             layer_choice="cyclic", groups="module", lr=0.1)
    assert opt.noise_groups() == [[2, 3], [4, 5]] and opt.num_groups == 2
    w = problem.params(model)
    for step in range(4):
        moved = [not torch.equal(a, b) for a, b in zip(_seen(model, opt, step), w)]
        assert moved == [False, False] + ([True, True, False, False] if step % 2 == 0
                                          else [False, False, True, True])
    for p in frozen:
        p.requires_grad_(True)
    assert opt.num_groups == 3


def test_anti_pgd_leaves_frozen_parameters_alone(problem):
    model, frozen = _frozen_first_layer(problem)
    opt = AntiPGD(model.parameters(), SGD, sigma=0.1, lr=0.1)
    w = problem.params(model)
    for _ in range(3):
        opt.step(problem.closure(model, opt))
    assert problem.same([p.detach() for p in frozen], w[:2])
    assert all(not opt.xi(p).any() for p in frozen) and all(
        opt.xi(p).any() for p in model.linears[1].parameters())


@pytest.mark.parametrize("sigma", [np.float32(0.25), np.float64(0.25), torch.tensor(0.25),
                                   torch.tensor(0.25, dtype=torch.float64)])
@pytest.mark.parametrize("cls", [PerturbedOptimizer, AntiPGD])
def test_numpy_and_0d_tensor_sigma_act_as_the_float(problem, sigma, cls):
    a, b = problem.model(), problem.model()
    opt = cls(a.parameters(), SGD, sigma=sigma, lr=0.1)
    ref = cls(b.parameters(), SGD, sigma=0.25, lr=0.1)
    for group in opt.param_groups:
        group["sigma"] = sigma  # a schedule may store such scalars too
    for _ in range(2):
        opt.step(problem.closure(a, opt))
        ref.step(problem.closure(b, ref))
    assert problem.same(problem.params(a), problem.params(b))


@pytest.mark.parametrize("sigma", [np.bool_(True), torch.tensor(True), torch.tensor([0.1]),
                                   torch.tensor(float("nan")), np.float32("inf")])
def test_non_scalar_or_non_finite_sigma_is_refused(problem, sigma):
    with pytest.raises(ValueError, match="sigma must be a finite number"):
        PerturbedOptimizer(problem.model().parameters(), SGD, sigma=sigma, lr=0.1)


@pytest.mark.parametrize("cls", [PerturbedOptimizer, AntiPGD])
def test_sparse_parameters_are_refused_before_any_step(cls):
    sparse = nn.Parameter(torch.eye(3, dtype=torch.float64).to_sparse())
    with pytest.raises(TypeError, match="dense"):
        cls([sparse], SGD, sigma=0.1, lr=0.1)
