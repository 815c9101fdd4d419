"""``noisereg bench --peers``: the same quantity computed the same way by an installed external
tool, on the same model and batch, timed side by side. PyHessian (Hutchinson trace, the same
number of probes) and Opacus (per-example gradient norms by ghost clipping, one forward and one
backward, not differentiable on either side) are optional extras (``pip install -e
'.[peers]'``), never dependencies; a missing one is reported as such. A peer that does not
compute what we compute (another probe count, other norms) raises instead of being timed."""

from __future__ import annotations

import importlib.util
import math
import warnings

import torch
import torch.nn.functional as F

from noisereg._seeding import torch_generator
from noisereg.diagnostics.hessian import hessian_trace
from noisereg.gradreg import per_example_sq_grad_norms
from noisereg.lab.bench import Target, side_by_side
from noisereg.metrics import per_example_cross_entropy
from noisereg.models.mlp import MLP

PROBES = 8


def _setup(batch: int = 128) -> tuple[MLP, torch.Tensor, torch.Tensor]:
    gen = torch_generator(1, "data")
    x, y = torch.rand(batch, 784, generator=gen), torch.randint(0, 10, (batch,), generator=gen)
    return MLP(784, [512, 512], 10, seed=0), x, y


def _missing(package: str) -> bool:
    if importlib.util.find_spec(package) is None:
        print(f"peer {package} is not installed: pip install -e '.[peers]'")
        return True
    return False


def _vs_pyhessian() -> float:
    """Seconds of our Hutchinson trace / PyHessian's, both with ``PROBES`` Rademacher probes and
    the gradient graph built once inside the timed call."""
    if _missing("pyhessian"):
        return math.nan
    from pyhessian import hessian as PyHessian

    model, x, y = _setup()

    def ours() -> None:
        hessian_trace(model, F.cross_entropy, x, y, probes=PROBES)

    def theirs() -> None:
        # PyHessian stops when |mean - previous| / previous < tol with a signed denominator:
        # tol=0 stops after 2 probes once the running mean is negative; -inf never stops early.
        # Its probes come from the global RNG: leave that as it was.
        with torch.random.fork_rng():
            samples = PyHessian(model, F.cross_entropy, data=(x, y), cuda=False).trace(
                maxIter=PROBES, tol=-math.inf)
        if len(samples) != PROBES:
            raise RuntimeError(f"PyHessian ran {len(samples)} probes, not {PROBES}")

    with warnings.catch_warnings():  # PyHessian's deprecated autograd calls
        warnings.simplefilter("ignore")
        times = side_by_side({"ours": ours, "pyhessian": theirs}, repeats=5, warmup=1)
    model.train()  # PyHessian switches the model to eval mode
    return times["ours"] / times["pyhessian"]


def _vs_opacus() -> float:
    """Seconds of our ghost norms (``create_graph=False``) / Opacus's ghost clipping norms
    (``GradSampleModuleFastGradientClipping``), after checking that they agree."""
    if _missing("opacus"):
        return math.nan
    from opacus.grad_sample import GradSampleModuleFastGradientClipping

    model, x, y = _setup()
    wrapped = GradSampleModuleFastGradientClipping(MLP(784, [512, 512], 10, seed=0),
                                                   loss_reduction="sum", use_ghost_clipping=True)

    def ours() -> torch.Tensor:
        return per_example_sq_grad_norms(model, per_example_cross_entropy, x, y,
                                         backend="ghost").sqrt()

    def theirs() -> torch.Tensor:
        wrapped.zero_grad(set_to_none=True)
        F.cross_entropy(wrapped(x), y, reduction="sum").backward()
        return wrapped.get_norm_sample()

    with warnings.catch_warnings():  # Opacus's full backward hooks on the first layer
        warnings.simplefilter("ignore")
        mine, peer = ours(), theirs()
        if not torch.allclose(mine, peer, rtol=1e-4, atol=0.0):
            raise RuntimeError("Opacus's ghost clipping norms differ from ours by up to "
                               f"{float(((mine - peer) / peer).abs().max()):.2e} (relative)")
        times = side_by_side({"ours": ours, "opacus": theirs}, repeats=5, warmup=1)
    return times["ours"] / times["opacus"]


TARGETS = [
    Target("peer-hutchinson-vs-pyhessian",
           f"Hutchinson trace, {PROBES} Rademacher probes on both sides (PyHessian's tol=-inf, "
           "its probe count checked), gradient graph built inside each call, MLP 784-512-512-10, "
           "batch 128, neither differentiable: ours / PyHessian",
           "<=", 1.2, "x", _vs_pyhessian, peer=True),
    Target("peer-norms-vs-opacus",
           "per-example grad norms, MLP 784-512-512-10, batch 128, one forward and one backward "
           "on each side, neither differentiable: ours (ghost, create_graph=False) / Opacus "
           "ghost clipping (GradSampleModuleFastGradientClipping), values checked equal to 1e-4; "
           "our differentiable norms (create_graph=True, for PEGR) have no Opacus counterpart",
           "<=", 1.0, "x", _vs_opacus, peer=True),
]
