"""Raw profiles of a network along segments: g(t), g'(t), activation flips, gradient summaries.

The definitions are the library's reconstruction of Kubo et al. (2019); see the package
docstring. Everything is evaluated chunk by chunk (whole segments per chunk), so memory stays
bounded by ``chunk`` points whatever the number of pairs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from noisereg._validate import check_int, check_positive
from noisereg.diagnostics.geometry._activations import (
    Function,
    PatternRecorder,
    watched_modules,
)
from noisereg.diagnostics.geometry.complexity import local_complexity


@dataclass(frozen=True)
class SegmentProfiles:
    """Raw profiles of ``f`` along ``P`` segments, ``T`` grid points, ``O`` outputs.

    Library reconstruction (Kubo et al. 2019 only give the abstract). Segment ``p`` is
    ``x(t) = (1 - t) x_a + t x_b`` with ``v = x_b - x_a`` and ``t_k = k / (T - 1)``.

    * ``t``: ``(T,)`` grid; ``g``: ``(P, T, O)`` values ``f_o(x(t_k))``;
    * ``dg``: ``(P, T, O)`` slopes ``g'(t_k) = J_f(x(t_k)) v`` (per unit of t, so they scale
      with ``L``); ``lengths``: ``(P,)`` ``L = ||v||``;
    * ``flips``: ``(P, T - 1)`` number of watched neurons whose sign differs between
      ``x(t_k)`` and ``x(t_{k+1})`` (None without watched activations); ``neurons``: how many
      neurons were watched;
    * with gradients: ``grad_norms`` ``(P, T, O)`` ``||grad f_o(x(t_k))||``, ``grad_cosines``
      ``(P, T - 1, O)`` cosine between consecutive gradients (1 when both vanish, 0 when one
      does), ``jacobian_steps`` ``(P, T - 1)`` ``||J(x(t_{k+1})) - J(x(t_k))||_F`` and, when
      asked, ``input_gradients`` ``(P, T, O, *input_shape)``;
    * ``complexity``: ``(P, T)`` local complexity at every point (:func:`local_complexity`).

    >>> import torch
    >>> from noisereg.diagnostics import segment_profiles
    >>> def f(x):  # ReLU on R^1, one kink at 0
    ...     return torch.relu(x).sum(1)
    >>> xa, xb = torch.tensor([[-1.0]]), torch.tensor([[2.0]])  # x = -1, -0.25, 0.5, 1.25, 2
    >>> p = segment_profiles(f, xa, xb, points=5)
    >>> p.pairs, p.points, p.outputs, p.neurons
    (1, 5, 1, 1)
    """

    t: torch.Tensor
    g: torch.Tensor
    dg: torch.Tensor
    lengths: torch.Tensor
    flips: torch.Tensor | None = None
    neurons: int = 0
    grad_norms: torch.Tensor | None = None
    grad_cosines: torch.Tensor | None = None
    jacobian_steps: torch.Tensor | None = None
    input_gradients: torch.Tensor | None = None
    complexity: torch.Tensor | None = None

    @property
    def pairs(self) -> int:
        return int(self.g.shape[0])

    @property
    def points(self) -> int:
        return int(self.g.shape[1])

    @property
    def outputs(self) -> int:
        return int(self.g.shape[2])


class _LinearTangents(TorchFunctionMode):
    """Forward-mode rule for ``F.linear`` with a dual input and constant weights: the primal
    is ``W x + b`` and the tangent ``W dx``.

    PyTorch's generic rule for ``addmm`` also multiplies the input by the weight's tangent,
    which it materialises as a dense zero matrix: one wasted matmul per layer. Measured by the
    ``geometry-linear-tangent-rule`` bench target (a plain JVP takes ~1.5x as long). Every
    other operation keeps PyTorch's rule. (Recognizing the input tangent to compute ``W v``
    once per segment instead of once per point gained 4-11% more and was dropped, issue 12.)
    """

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.linear:
            bound = dict(zip(("input", "weight", "bias"), args, strict=False), **kwargs)
            primal, tangent = fwAD.unpack_dual(bound["input"])
            weight, bias = bound["weight"], bound.get("bias")
            if tangent is not None and _constant(weight) and _constant(bias):
                return fwAD.make_dual(F.linear(primal, weight, bias), F.linear(tangent, weight))
        return func(*args, **kwargs)


def _constant(tensor: torch.Tensor | None) -> bool:
    return tensor is None or fwAD.unpack_dual(tensor).tangent is None


def _as_matrix(out: Any, n: int) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.ndim == 0 or out.shape[0] != n:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"f must map a batch of {n} inputs to a tensor with {n} rows; "
                         f"got {shape}")
    return out.reshape(n, -1)


def _check_pairs(xa: torch.Tensor, xb: torch.Tensor) -> None:
    """``xa`` and ``xb``: floating tensors of the same shape ``(P, ...)``, finite, P >= 1."""
    for name, x in (("xa", xa), ("xb", xb)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point() or x.ndim < 2 or x.shape[0] < 1:
            raise ValueError(f"{name} must be a floating tensor of shape (pairs, *input_shape) "
                             f"with pairs >= 1; got dtype {x.dtype}, shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} must be finite")
    if xa.shape != xb.shape or xa.dtype != xb.dtype or xa.device != xb.device:
        raise ValueError(f"xa and xb must have the same shape, dtype and device; got "
                         f"{tuple(xa.shape)} {xa.dtype} and {tuple(xb.shape)} {xb.dtype}")
    same = (xa == xb).flatten(1).all(1)
    if same.any():
        raise ValueError(f"xa and xb must differ in every pair (the segment length L is a "
                         f"divisor); pair {int(same.nonzero()[0])} has L = 0")


def _check_function(f: Any) -> None:
    if not callable(f):
        raise TypeError(f"f must be callable (a module or function of a batch), got {f!r}")


def _tangent_pass(f: Function, x: torch.Tensor, per_segment: torch.Tensor, points: int,
                  recorder: PatternRecorder) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and ``J_f(x) v`` in one forward-mode pass (activation patterns recorded)."""
    v = per_segment.repeat_interleave(points, dim=0)
    with (torch.no_grad(), fwAD.dual_level(), _LinearTangents(),
          recorder.recording(len(x))):
        with warnings.catch_warnings():
            # PyTorch's own first make_dual scripts its JVP decompositions with torch.jit.
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated",
                                    DeprecationWarning)
            dual = fwAD.make_dual(x, v)
        primal, tangent = fwAD.unpack_dual(_as_matrix(f(dual), len(x)))
    tangent = torch.zeros_like(primal) if tangent is None else tangent
    return primal.detach(), tangent.detach()


def _gradient_pass(f: Function, x: torch.Tensor, per_segment: torch.Tensor, points: int,
                   outputs: int, recorder: PatternRecorder) -> tuple[torch.Tensor, ...]:
    """Values, slopes ``grad f . v`` and input gradients ``(n, O, *input_shape)``: one forward,
    one batched backward (a vmap over the ``O`` output basis vectors)."""
    with torch.enable_grad(), recorder.recording(len(x)):
        x = x.detach().requires_grad_(True)
        out = _as_matrix(f(x), len(x))
    if out.requires_grad:
        basis = torch.eye(outputs, dtype=out.dtype, device=out.device)[:, None].expand(
            outputs, len(x), outputs)
        (grads,) = torch.autograd.grad(out, x, basis, is_grads_batched=True, allow_unused=True)
    else:  # f does not depend on its input
        grads = None
    grads = x.new_zeros(len(x), outputs, *x.shape[1:]) if grads is None else grads.movedim(0, 1)
    v = per_segment.flatten(1).repeat_interleave(points, dim=0)
    slopes = (grads.flatten(2) * v[:, None]).sum(-1)
    return out.detach(), slopes.detach(), grads.detach()


def _gradient_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine between gradients along the last axis: 1 when both vanish, 0 when one does."""
    na, nb = a.norm(dim=-1), b.norm(dim=-1)
    dot = (a * b).sum(-1)
    both, either = (na > 0) & (nb > 0), (na > 0) | (nb > 0)
    cos = torch.where(both, dot / torch.where(both, na * nb, 1.0), 0.0)
    return torch.where(either, cos.clamp(-1.0, 1.0), 1.0)


def segment_points(xa: torch.Tensor, xb: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(P * T, *input_shape)`` points ``(1 - t_k) x_a + t_k x_b``, exact at both ends."""
    weight = t.reshape(1, -1, *([1] * (xa.ndim - 1)))
    return torch.lerp(xa[:, None], xb[:, None], weight).flatten(0, 1)


def segment_profiles(
    f: Function,
    xa: torch.Tensor,
    xb: torch.Tensor,
    *,
    points: int = 129,
    chunk: int = 4096,
    gradients: bool = False,
    input_gradients: bool = False,
    activations: Sequence[nn.Module] | None = None,
    complexity_radius: float | None = None,
    directions: int | torch.Tensor = 8,
    seed: int = 0,
) -> SegmentProfiles:
    """Raw profiles of ``f`` along the segments from ``xa[p]`` to ``xb[p]``.

    ``f`` maps a batch ``(n, *input_shape)`` to ``(n,)`` or ``(n, O, ...)`` outputs (flattened
    to ``O``), point by point (put BatchNorm / Dropout modules in eval mode). Without gradients
    one forward-mode pass (``torch.autograd.forward_ad``) gives ``g`` and ``g' = J_f v`` at
    about twice the cost of a forward pass; ``gradients=True`` instead runs one forward and one
    backward pass per output to get the full input gradients (``g' = grad f . v``) and keeps
    their norms, consecutive cosines and Jacobian steps; ``input_gradients=True`` also keeps
    the gradients themselves (``P * T * O * input_size`` numbers).

    ``activations``: modules whose output signs form the activation pattern, recorded by forward
    hooks in the same pass (``()`` for none); by default every ReLU call of ``f``, module or
    functional (``nn.ReLU``, ``F.relu``, ``torch.relu``, ``Tensor.relu``), recorded through a
    ``TorchFunctionMode``.
    ``complexity_radius``: if given, the local complexity (:func:`local_complexity` with
    ``directions`` and ``seed``) at every point, which costs ``2 * directions`` forward passes
    per point. ``chunk`` bounds the points per pass (whole segments; divided by ``O`` when
    gradients are kept).

    >>> import torch
    >>> from noisereg.diagnostics import segment_profiles
    >>> def f(x):  # ReLU on R^1, one kink at 0
    ...     return torch.relu(x).sum(1)
    >>> xa, xb = torch.tensor([[-1.0]]), torch.tensor([[2.0]])  # x = -1, -0.25, 0.5, 1.25, 2
    >>> p = segment_profiles(f, xa, xb, points=5)
    >>> p.t.tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> p.g[0, :, 0].tolist()  # f(x(t_k))
    [0.0, 0.0, 0.5, 1.25, 2.0]
    >>> p.dg[0, :, 0].tolist()  # f'(x) (xb - xa)
    [0.0, 0.0, 3.0, 3.0, 3.0]
    >>> p.flips.tolist(), p.lengths.tolist()  # the neuron turns on between t = 0.25 and 0.5
    ([[0, 1, 0, 0]], [3.0])
    """
    _check_function(f)
    _check_pairs(xa, xb)
    check_int("points", points, low=3)
    check_int("chunk", chunk, low=1)
    if complexity_radius is not None:
        check_positive("complexity_radius", complexity_radius)
    watched = watched_modules(activations)
    recorder = PatternRecorder(watched, lambda signs: _flips(signs, points))
    gradients = gradients or input_gradients
    with torch.no_grad():
        outputs = _as_matrix(f(xa[:1]), 1).shape[1]
    per_chunk = max(1, (chunk // outputs if gradients else chunk) // points)
    t = torch.linspace(0.0, 1.0, points, dtype=xa.dtype, device=xa.device)

    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(xa), per_chunk):
        a, b = xa[start:start + per_chunk], xb[start:start + per_chunk]
        p = len(a)
        x = segment_points(a, b, t)
        rows: dict[str, torch.Tensor] = {}
        if gradients:
            values, slopes, grads = _gradient_pass(f, x, b - a, points, outputs, recorder)
            grads = grads.reshape(p, points, outputs, -1)
            rows["grad_norms"] = grads.norm(dim=-1)
            rows["grad_cosines"] = _gradient_cosines(grads[:, 1:], grads[:, :-1])
            rows["jacobian_steps"] = (grads[:, 1:] - grads[:, :-1]).flatten(2).norm(dim=-1)
            if input_gradients:
                rows["input_gradients"] = grads.reshape(p, points, outputs, *a.shape[1:])
        else:
            values, slopes = _tangent_pass(f, x, b - a, points, recorder)
        flips = recorder.total()
        if flips is not None:
            rows["flips"] = flips.to(torch.int64)
        if complexity_radius is not None:
            rows["complexity"] = local_complexity(
                f, x, radius=complexity_radius, directions=directions, seed=seed,
                activations=watched, chunk=chunk).reshape(p, points)
        rows["g"] = values.reshape(p, points, -1)
        rows["dg"] = slopes.reshape(p, points, -1)
        for key, value in rows.items():
            parts.setdefault(key, []).append(value)

    joined = {key: torch.cat(value) for key, value in parts.items()}
    return SegmentProfiles(t=t, lengths=(xb - xa).flatten(1).norm(dim=1),
                           neurons=recorder.neurons, **joined)


def _flips(signs: torch.Tensor, points: int) -> torch.Tensor:
    """``(P, T - 1)`` neurons of one layer whose sign differs between consecutive points."""
    signs = signs.reshape(-1, points, signs.shape[1])
    return (signs[:, 1:] ^ signs[:, :-1]).sum(-1, dtype=torch.int32)
