"""The Monte-Carlo smoothed loss draws PerturbedOptimizer's noise: its mean equals the mean loss
inside ``opt.perturbed(s)`` for s = 0 .. samples-1, for every mode, layer choice and grouping
(its agreement with the closed forms is tested in tests/theory/test_noise_injection.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from noisereg.diagnostics.smoothing import smoothed_loss
from noisereg.optim import PerturbedOptimizer


def _mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (out - target).pow(2).mean()


@pytest.mark.parametrize(("mode", "layer_choice", "groups"), [
    ("global", "random", "tensor"), ("layerwise", "random", "tensor"),
    ("layerwise", "cyclic", "module")])
def test_smoothed_loss_draws_the_optimizer_noise(mode, layer_choice, groups) -> None:
    gen = torch.Generator().manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    net[0].bias.requires_grad_(False)  # frozen parameters are neither perturbed nor counted
    x, y = torch.randn(6, 3, generator=gen), torch.randn(6, 1, generator=gen)
    kwargs = dict(sigma=0.2, mode=mode, layer_choice=layer_choice, groups=groups, seed=5)
    estimate = smoothed_loss(net, _mse, x, y, samples=4, **kwargs)
    trainable = [(k, p) for k, p in net.named_parameters() if p.requires_grad]
    opt = PerturbedOptimizer(trainable, torch.optim.SGD, lr=0.0, **kwargs)
    losses = []
    with torch.no_grad():
        for s in range(4):
            with opt.perturbed(s):
                losses.append(float(_mse(net(x), y)))
    assert math.isclose(estimate.value, sum(losses) / 4, rel_tol=1e-12)
