"""Speed of noise injection (issue 4): a PerturbedOptimizer step against the base optimizer's
step with the same closure on an MLP 784-512-512-10 (layer-wise <= 1.15x, global <= 1.5x) at
batch 128 and at full batch 1024, and a Hutchinson probe against a gradient (<= 3x)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from noisereg._seeding import torch_generator
from noisereg.diagnostics.hessian import hessian_trace
from noisereg.lab.bench import Target, side_by_side
from noisereg.models.mlp import MLP
from noisereg.optim import PerturbedOptimizer

WIDTHS, STEPS, PROBES = (512, 512), 10, 10


def _problem(batch: int) -> tuple[MLP, torch.Tensor, torch.Tensor]:
    gen = torch_generator(0, "data")
    x = torch.randn(batch, 784, generator=gen)
    return MLP(784, WIDTHS, 10, seed=0), x, torch.randint(10, (batch,), generator=gen)


def _steps(batch: int, mode: str | None) -> Callable[[], None]:
    """``STEPS`` training steps: the base SGD step (``mode=None``) or PGD's."""
    model, x, y = _problem(batch)
    if mode is None:
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    else:
        opt = PerturbedOptimizer(model.parameters(), torch.optim.SGD, sigma=1e-2, mode=mode,
                                 lr=1e-3)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    def run() -> None:
        for _ in range(STEPS):  # layer-wise cost depends on the layer drawn: average 10 steps
            if mode is None:
                closure()
                opt.step()
            else:
                opt.step(closure)

    return run


def _step_ratio(mode: str, batch: int) -> Callable[[], float]:
    def measure() -> float:
        seconds = side_by_side({"base": _steps(batch, None), "pgd": _steps(batch, mode)},
                               repeats=9, warmup=2)
        return seconds["pgd"] / seconds["base"]
    return measure


def _probe_ratio() -> float:
    model, x, y = _problem(128)

    def gradient() -> None:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()

    def trace() -> None:
        hessian_trace(model, F.cross_entropy, x, y, probes=PROBES)

    seconds = side_by_side({"gradient": gradient, "trace": trace}, repeats=7, warmup=1)
    return seconds["trace"] / PROBES / seconds["gradient"]


_LIMITS = {"layerwise": 1.15, "global": 1.5}
TARGETS = [
    Target(f"pgd-{mode}-step-b{batch}",
           f"PerturbedOptimizer({mode}) step / SGD step, same closure, MLP 784-512-512-10, "
           f"batch {batch}", "<=", _LIMITS[mode], "x", _step_ratio(mode, batch))
    for batch in (128, 1024) for mode in ("layerwise", "global")
] + [
    Target("hutchinson-probe", f"hessian_trace({PROBES} probes) / {PROBES} / one gradient, "
           "MLP 784-512-512-10, batch 128 (includes the gradient graph built once)",
           "<=", 3.0, "x", _probe_ratio),
]
