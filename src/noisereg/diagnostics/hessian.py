r"""Curvature of the training loss from Hessian-vector products (no Hessian is formed).

* :func:`hessian_trace`: Hutchinson, tr(H) = E[v^T H v] for Rademacher v (Hutchinson 1990), or
  Hutch++ (Meyer, Musco, Musco, Woodruff 2021), which takes the trace of a sketched top
  subspace exactly and applies Hutchinson to the rest; with the standard error of the estimate,
  and per-layer traces tr(H_ll) = E[v_l^T (H v)_l] from the same probes.
* :func:`top_eigenvalue`: power iteration on H.

The loss is ``loss(model(inputs), targets)``, a reduced scalar (e.g. ``F.cross_entropy`` with
its default mean; gradreg's ``per_example_loss`` returns one loss per example instead), over the
trainable parameters; ``inputs`` and ``targets`` are tensors, tuples or dicts of tensors with the
batch on dim 0 (``model(*inputs)``, ``model(**inputs)``) and ``forward(model, inputs)`` replaces
the call when given. The model is used in the mode it is in (unlike PyHessian, nothing is
switched to eval). HVPs are double backward through the gradient graph, built once per call
(attention on the math kernel, which has one). Probes are drawn on the CPU from the seeded
generator, so a seed gives the same probes on every device, and moved to the parameters' device
and dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from noisereg._calls import (
    Batch,
    Forward,
    call,
    check_batch,
    check_forward,
    double_backward_kernels,
)
from noisereg._seeding import torch_generator
from noisereg._validate import check_choice, check_int, check_positive

LossFn = Callable[[object, object], torch.Tensor]
Vectors = list[torch.Tensor]


@dataclass(frozen=True)
class TraceEstimate:
    """trace +- stderr from ``probes`` Hessian-vector products; ``per_layer`` maps a module name
    (the parameter names' prefix before the last dot) to its own estimate.

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.diagnostics import hessian_trace
    >>> model = nn.Sequential(nn.Linear(2, 1, bias=False))
    >>> def loss(out, t):  # H = X^T X / n = diag(0.5, 2)
    ...     return 0.5 * ((out.squeeze(1) - t) ** 2).mean()
    >>> X, y = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.zeros(2)
    >>> hessian_trace(model, loss, X, y, probes=4)  # diagonal H: every probe gives tr(H)
    TraceEstimate(trace=2.5, stderr=0.0, probes=4, method='hutchinson', per_layer=None)
    """

    trace: float
    stderr: float
    probes: int
    method: str
    per_layer: dict[str, TraceEstimate] | None = None


@dataclass(frozen=True)
class EigenEstimate:
    """The eigenvalue found by power iteration, the iterations run and whether it converged.

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.diagnostics import top_eigenvalue
    >>> model = nn.Sequential(nn.Linear(2, 1, bias=False))
    >>> def loss(out, t):  # H = X^T X / n = diag(0.5, 2)
    ...     return 0.5 * ((out.squeeze(1) - t) ** 2).mean()
    >>> X, y = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.zeros(2)
    >>> est = top_eigenvalue(model, loss, X, y)
    >>> round(est.value, 3), est.converged
    (2.0, True)
    """

    value: float
    iterations: int
    converged: bool


class _Hessian:
    """H v for the loss at the model's current weights (the gradient graph is kept)."""

    def __init__(self, model: nn.Module, loss: LossFn, inputs: Batch, targets: Batch,
                 forward: Forward | None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss):
            raise TypeError(f"loss must be callable, got {type(loss).__name__}")
        check_forward(forward)
        check_batch(inputs, targets)
        named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("model has no parameter with requires_grad=True")
        self.names = [k for k, _ in named]
        self.params = [p for _, p in named]
        self.device = self.params[0].device
        with torch.enable_grad(), double_backward_kernels():
            value = loss(call(model, inputs, forward), targets)
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                raise ValueError(f"loss must return a scalar (a reduced loss, e.g. a mean), got "
                                 f"{shape}")
            self.grads = torch.autograd.grad(value.reshape(()), self.params, create_graph=True)

    @property
    def dim(self) -> int:
        return sum(p.numel() for p in self.params)

    def __call__(self, vs: Vectors) -> Vectors:
        with torch.enable_grad():
            hv = torch.autograd.grad(self.grads, self.params, grad_outputs=vs,
                                     retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if h is None else h for h, p in zip(hv, self.params)]

    def rademacher(self, gen: torch.Generator) -> Vectors:
        """Independent +-1 entries, one draw each. (Packing 31 signs into every int32 draw was
        measured against this on the MLP of the ``hutchinson-probe`` bench: 10 probes 5% faster
        on one thread, 4-52% slower on two, so the plain draw stays.)"""
        signs = torch.randint(0, 2, (self.dim,), generator=gen, dtype=torch.float32)
        return self.unflat(signs.mul_(2).sub_(1))

    def flat(self, vs: Vectors) -> torch.Tensor:
        return torch.cat([v.reshape(-1) for v in vs])

    def unflat(self, x: torch.Tensor) -> Vectors:
        """One vector per parameter, on its device and in its dtype."""
        out, start = [], 0
        for p in self.params:
            out.append(x[start:start + p.numel()].view_as(p).to(device=p.device, dtype=p.dtype))
            start += p.numel()
        return out


def _mean_stderr(samples: torch.Tensor) -> tuple[float, float]:
    k = samples.shape[0]
    stderr = float(samples.std() / math.sqrt(k)) if k > 1 else math.nan
    return float(samples.mean()), stderr


def hessian_trace(model: nn.Module, loss: LossFn, inputs: Batch, targets: Batch, *,
                  probes: int, method: Literal["hutchinson", "hutch++"] = "hutchinson",
                  seed: int = 0, per_layer: bool = False,
                  forward: Forward | None = None) -> TraceEstimate:
    """Estimate tr(grad^2 L) with ``probes`` Hessian-vector products.

    hutchinson: mean of v^T H v over Rademacher probes, stderr = sample std / sqrt(probes);
    per_layer adds tr(H_ll) for every module. hutch++ (probes >= 3): k = probes // 3 sketch
    columns give Q = orth(H S), tr(Q^T H Q) is exact and Hutchinson on (I - QQ^T) H (I - QQ^T)
    uses the remaining probes - 2k; stderr is that of the Hutchinson part. Exact when
    k >= the number of parameters.

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.diagnostics import hessian_trace
    >>> model = nn.Sequential(nn.Linear(2, 1, bias=False))
    >>> def loss(out, t):  # H = X^T X / n = diag(0.5, 2)
    ...     return 0.5 * ((out.squeeze(1) - t) ** 2).mean()
    >>> X, y = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.zeros(2)
    >>> est = hessian_trace(model, loss, X, y, probes=4, per_layer=True)
    >>> est.trace, est.stderr, est.per_layer["0"].trace  # tr(diag(0.5, 2)), exact
    (2.5, 0.0, 2.5)
    >>> est = hessian_trace(model, loss, X, y, probes=6, method="hutch++")  # k = 2 = dim
    >>> round(est.trace, 6)
    2.5
    """
    check_int("probes", probes, low=1)
    check_choice("method", method, ("hutchinson", "hutch++"))
    if per_layer and method != "hutchinson":
        raise ValueError("per_layer traces need method='hutchinson'")
    hess = _Hessian(model, loss, inputs, targets, forward)
    gen = torch_generator(check_int("seed", seed, low=0), "probes")
    if method == "hutch++":
        return _hutchpp(hess, probes, gen)
    rows = []
    for _ in range(probes):
        vs = hess.rademacher(gen)
        rows.append(torch.stack([torch.dot(v.reshape(-1), h.reshape(-1)).double()
                                 for v, h in zip(vs, hess(vs))]))
    samples = torch.stack(rows)  # probes x tensors
    trace, stderr = _mean_stderr(samples.sum(1))
    layers = None
    if per_layer:
        modules: dict[str, list[int]] = {}
        for t, name in enumerate(hess.names):
            modules.setdefault(name.rpartition(".")[0], []).append(t)
        layers = {m: TraceEstimate(*_mean_stderr(samples[:, cols].sum(1)), probes, method)
                  for m, cols in modules.items()}
    return TraceEstimate(trace, stderr, probes, method, layers)


def _hutchpp(hess: _Hessian, probes: int, gen: torch.Generator) -> TraceEstimate:
    if probes < 3:
        raise ValueError(f"hutch++ needs probes >= 3, got {probes}")
    k = probes // 3
    sketch = torch.stack([hess.flat(hess(hess.rademacher(gen))) for _ in range(k)], 1)
    Q = torch.linalg.qr(sketch.double()).Q
    HQ = torch.stack([hess.flat(hess(hess.unflat(q))) for q in Q.T], 1).double()
    exact = float(torch.trace(Q.T @ HQ))
    samples = []
    for _ in range(probes - 2 * k):
        g = hess.flat(hess.rademacher(gen)).double()
        g = g - Q @ (Q.T @ g)
        samples.append(g @ hess.flat(hess(hess.unflat(g))).double())
    rest, stderr = _mean_stderr(torch.stack(samples))
    return TraceEstimate(exact + rest, stderr, probes, "hutch++")


def top_eigenvalue(model: nn.Module, loss: LossFn, inputs: Batch, targets: Batch, *,
                   iters: int = 100, tol: float = 1e-4, seed: int = 0,
                   forward: Forward | None = None) -> EigenEstimate:
    """The Hessian eigenvalue of largest magnitude (the top one near a minimum) by power
    iteration v <- Hv / ||Hv||, value = v^T H v; stops when it changes by < tol * |value|.

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.diagnostics import top_eigenvalue
    >>> model = nn.Sequential(nn.Linear(2, 1, bias=False))
    >>> def loss(out, t):  # H = X^T X / n = diag(0.5, 2)
    ...     return 0.5 * ((out.squeeze(1) - t) ** 2).mean()
    >>> X, y = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.zeros(2)
    >>> round(top_eigenvalue(model, loss, X, y).value, 3)  # the largest of 0.5, 2
    2.0
    """
    check_int("iters", iters, low=1)
    check_positive("tol", tol)
    hess = _Hessian(model, loss, inputs, targets, forward)
    gen = torch_generator(check_int("seed", seed, low=0), "probes")
    v = torch.randn(hess.dim, generator=gen, dtype=torch.float64).to(hess.device)
    v /= v.norm()
    value = math.nan
    for it in range(1, iters + 1):
        hv = hess.flat(hess(hess.unflat(v))).double()
        new = float(v @ hv)
        norm = hv.norm()
        if norm == 0:
            return EigenEstimate(0.0, it, True)
        v = hv / norm
        if abs(new - value) < tol * abs(new):
            return EigenEstimate(new, it, True)
        value = new
    return EigenEstimate(value, iters, False)
