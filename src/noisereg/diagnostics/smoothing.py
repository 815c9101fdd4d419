r"""Monte-Carlo smoothed loss of noise injection (Orvieto, Raj, Kersting, Bach, AISTATS 2023).

    R_sigma(w) = E_eps L(w + sigma eps),  eps ~ N(0, I)  (global noise; layer-wise noise puts
    std sqrt(M) sigma on one of M groups),

estimated with the noise :class:`noisereg.PerturbedOptimizer` draws at steps 0 .. samples-1
(same seed, plan and stream), so that it can be checked against the closed forms of
:mod:`noisereg.theory.noise_injection`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from noisereg._validate import check_choice, check_int, check_nonnegative
from noisereg.optim._noise import NoiseStream
from noisereg.optim._perturbation import Perturbation, module_groups, plan_noise


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte-Carlo mean, its standard error and the number of samples.

    At sigma = 0 every sample is the loss itself:

    >>> import torch
    >>> from noisereg.diagnostics import smoothed_loss
    >>> model = torch.nn.Linear(1, 1, bias=False)
    >>> _ = torch.nn.init.ones_(model.weight)
    >>> x = torch.ones(1, 1)
    >>> smoothed_loss(model, lambda out, t: out.square().mean(), x, x, sigma=0.0, samples=2)
    MonteCarloEstimate(value=1.0, stderr=0.0, samples=2)
    """

    value: float
    stderr: float
    samples: int


def smoothed_loss(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  inputs: torch.Tensor, targets: torch.Tensor, *, sigma: float, samples: int,
                  mode: Literal["global", "layerwise"] = "global",
                  layer_choice: Literal["random", "cyclic"] = "random",
                  groups: Literal["tensor", "module"] = "tensor",
                  seed: int = 0) -> MonteCarloEstimate:
    """Monte-Carlo estimate of R_sigma(w) = E loss_fn(model_{w + noise}(inputs), targets) over
    the trainable parameters, the noise of ``PerturbedOptimizer(model.named_parameters(), ...,
    sigma=sigma, mode=mode, layer_choice=layer_choice, groups=groups, seed=seed)`` at steps
    0 .. samples-1; the weights are restored bitwise afterwards. Returns the mean and its
    standard error.

    For L(w) = w^2, R_sigma(w) = w^2 + sigma^2 = 1.25 at w = 1, sigma = 0.5:

    >>> import torch
    >>> from noisereg.diagnostics import smoothed_loss
    >>> model = torch.nn.Linear(1, 1, bias=False)
    >>> _ = torch.nn.init.ones_(model.weight)
    >>> x = torch.ones(1, 1)
    >>> est = smoothed_loss(model, lambda out, t: out.square().mean(), x, x, sigma=0.5,
    ...                     samples=1000)
    >>> abs(est.value - 1.25) < 4 * est.stderr, model.weight.item()  # weights restored
    (True, 1.0)
    """
    sigma = check_nonnegative("sigma", sigma)
    check_int("samples", samples, low=2)
    check_choice("mode", mode, ("global", "layerwise"))
    check_choice("layer_choice", layer_choice, ("random", "cyclic"))
    check_choice("groups", groups, ("tensor", "module"))
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    noise_groups = None  # global noise
    if mode == "layerwise":
        noise_groups = ([[i] for i in range(len(params))] if groups == "tensor"
                        else module_groups([k for k, _ in named]))
    stream, perturbation = NoiseStream(seed), Perturbation()
    values = torch.empty(samples, dtype=torch.float64)
    with torch.no_grad():
        for s in range(samples):
            plan = plan_noise(params, [sigma] * len(params), noise_groups, s, stream, layer_choice)
            perturbation.apply(plan, stream, s)
            try:
                values[s] = float(loss_fn(model(inputs), targets))
            finally:
                perturbation.restore()
    return MonteCarloEstimate(float(values.mean()), float(values.std() / math.sqrt(samples)),
                              samples)
