"""``noisereg bench --peers``: the same quantity from an installed external tool, on the same
model and batch, timed side by side. PyHessian (Hutchinson trace) and Opacus (per-sample
gradient norms, not differentiable) are optional extras (``pip install -e '.[peers]'``), never
dependencies; a missing one is reported as such."""

from __future__ import annotations

import importlib.util
import math
import warnings

import torch
import torch.nn.functional as F

from noisereg.bench import Target, side_by_side
from noisereg.diagnostics.hessian import hessian_trace
from noisereg.gradreg import per_example_sq_grad_norms
from noisereg.models.init import generator
from noisereg.models.mlp import MLP

PROBES = 8


def _setup(batch: int = 128) -> tuple[MLP, torch.Tensor, torch.Tensor]:
    gen = generator(1)
    x, y = torch.rand(batch, 784, generator=gen), torch.randint(0, 10, (batch,), generator=gen)
    return MLP(784, [512, 512], 10, seed=0), x, y


def _missing(package: str) -> bool:
    if importlib.util.find_spec(package) is None:
        print(f"peer {package} is not installed: pip install -e '.[peers]'")
        return True
    return False


def _vs_pyhessian() -> float:
    """Seconds of our Hutchinson trace / PyHessian's, with the same number of probes."""
    if _missing("pyhessian"):
        return math.nan
    from pyhessian import hessian as PyHessian

    model, x, y = _setup()

    def ours() -> None:
        hessian_trace(model, F.cross_entropy, x, y, probes=PROBES)

    def theirs() -> None:  # tol=0 makes PyHessian run exactly maxIter probes
        PyHessian(model, F.cross_entropy, data=(x, y), cuda=False).trace(maxIter=PROBES, tol=0.0)

    with warnings.catch_warnings():  # PyHessian's deprecated autograd calls
        warnings.simplefilter("ignore")
        times = side_by_side({"ours": ours, "pyhessian": theirs}, repeats=5, warmup=1)
    model.train()  # PyHessian switches the model to eval mode
    return times["ours"] / times["pyhessian"]


def _vs_opacus() -> float:
    """Seconds of our differentiable ghost norms / Opacus's per-sample gradients and norms."""
    if _missing("opacus"):
        return math.nan
    from opacus import GradSampleModule

    model, x, y = _setup()
    wrapped = GradSampleModule(MLP(784, [512, 512], 10, seed=0))

    def ours() -> None:
        norms = per_example_sq_grad_norms(
            model, lambda o, t: F.cross_entropy(o, t, reduction="none"), x, y,
            backend="ghost", create_graph=True)
        norms.sum().backward()  # ours is differentiable: include the backward through it

    def theirs() -> None:
        wrapped.zero_grad(set_to_none=True)
        F.cross_entropy(wrapped(x), y, reduction="sum").backward()
        torch.stack([p.grad_sample.flatten(1).square().sum(1)
                     for p in wrapped.parameters()]).sum(0)

    with warnings.catch_warnings():  # Opacus's full backward hooks on the first layer
        warnings.simplefilter("ignore")
        times = side_by_side({"ours": ours, "opacus": theirs}, repeats=5, warmup=1)
    return times["ours"] / times["opacus"]


TARGETS = [
    Target("peer-hutchinson-vs-pyhessian",
           f"Hutchinson trace, {PROBES} probes, MLP 784-512-512-10, batch 128: ours / PyHessian",
           "<=", 1.2, "x", _vs_pyhessian, peer=True),
    Target("peer-norms-vs-opacus",
           "per-example grad norms, MLP 784-512-512-10, batch 128: ours (ghost, differentiable, "
           "with the backward through them) / Opacus (per-sample grads, not differentiable)",
           "<=", 1.5, "x", _vs_opacus, peer=True),
]
