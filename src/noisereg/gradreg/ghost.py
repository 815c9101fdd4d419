"""Ghost norms: per-example squared gradient norms from layer activations and output gradients.

For a layer with per-example input positions ``a_{i,t}`` and output gradients
``g_{i,t} = d(sum_k l_k) / d out_{i,t}`` (= ``d l_i / d out_{i,t}`` when examples do not interact),
the per-example weight gradient is ``sum_t g_{i,t} a_{i,t}^T``, whose squared Frobenius norm is

    ||grad_W l_i||^2 = sum_{t,t'} <a_{i,t}, a_{i,t'}> <g_{i,t}, g_{i,t'}>          (Gram form)

(Goodfellow 2015; Li et al. 2022, "ghost clipping"). With one position it is
``||a_i||^2 ||g_i||^2``. The output gradients come from
``torch.autograd.grad(sum_i l_i, layer_outputs, create_graph=True)``, so the norms stay
differentiable with respect to the parameters (double backprop), unlike Opacus / BackPACK.

Covered modules: ``nn.Linear`` (inputs ``[B, ..., in]``), ``nn.Conv1d`` / ``nn.Conv2d`` (any
stride, padding, padding mode, dilation and groups), ``nn.Embedding``, ``nn.LayerNorm``,
``nn.GroupNorm`` and BatchNorm in eval mode (an affine map with fixed statistics), with or
without biases, and the layers given a rule with :func:`register_ghost_rule`. Linear layers
always use the Gram form (no per-example gradient is ever built); a convolution with ``T``
output positions, ``p = C_in/groups * prod(kernel)`` and ``d = C_out/groups`` builds the
per-example weight gradient (``T p d`` multiply-adds) instead when that is cheaper than the Gram
products (``T^2 (p + d)``), i.e. unless ``T (p + d) <= p d`` (ghost clipping decides by memory
instead; here speed matters); norm layers build theirs (it has the size of the weight, one
vector per example). A module called several times in one forward (weight reuse, e.g. an
unrolled recurrence, or one module registered under two names) is handled: its calls are
concatenated as extra positions.

Right or refuse. The norms are exact only if the gradient of every trainable parameter flows
through the calls of the module owning it. After the forward pass the autograd graph of the
losses is walked once, tracking whether the walk is inside a captured call (entered at the
call's output, left at its inputs); a trainable parameter reached outside a call of its own
module (functional weight tying ``F.linear(h, emb.weight)``, ``nn.MultiheadAttention``'s
``out_proj`` used through ``F.multi_head_attention_forward``, a module without a rule, a
parametrization) makes the backend refuse (:class:`Refused`), as do parameters shared
between modules, a batch that is not dim 0 of a covered layer's input and output, and an input
modified in place. A covered layer's output modified in place (``ReLU(inplace=True)`` after
BatchNorm) is handled: that module's output is cloned from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from noisereg._calls import Batch, Forward, call
from noisereg.gradreg._checks import LossFn, per_example

if TYPE_CHECKING:
    from noisereg.gradreg._plan import Plan

# A rule maps a module and its (activation, output gradient) pairs to per-example norms [B].
Rule = Callable[[nn.Module, list[tuple[Tensor, Tensor]]], Tensor]


def _gram_sq_norm(a: Tensor, g: Tensor) -> Tensor:
    """``||sum_t g_t a_t^T||_F^2`` per example for ``a [B, T, p]``, ``g [B, T, d]``."""
    if a.shape[1] == 1:
        return a.square().sum((1, 2)) * g.square().sum((1, 2))
    return (torch.bmm(a, a.transpose(1, 2)) * torch.bmm(g, g.transpose(1, 2))).sum((1, 2))


def _cat(tensors: list[Tensor], dim: int) -> Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=dim)


def _positions(tensors: list[Tensor], features: int) -> Tensor:
    """Concatenate ``[B, ..., features]`` tensors of all calls into ``[B, T, features]``."""
    return _cat([t.reshape(t.shape[0], -1, features) for t in tensors], dim=1)


def _linear(m: nn.Linear, calls: list[tuple[Tensor, Tensor]]) -> Tensor:
    g = _positions([g for _, g in calls], m.out_features)
    norms = g.new_zeros(g.shape[0])
    if m.weight.requires_grad:
        norms = norms + _gram_sq_norm(_positions([a for a, _ in calls], m.in_features), g)
    if m.bias is not None and m.bias.requires_grad:
        norms = norms + g.sum(1).square().sum(1)
    return norms


def _unfold(m: nn.Conv1d | nn.Conv2d, x: Tensor) -> Tensor:
    """Input patches of a convolution, ``[B, groups, C_in/groups * prod(kernel), T]``."""
    pad = m._reversed_padding_repeated_twice  # what nn.Conv itself pads with (incl. 'same')
    if any(pad):
        x = F.pad(x, pad, mode="constant" if m.padding_mode == "zeros" else m.padding_mode)
    kernel, dilation, stride = m.kernel_size, m.dilation, m.stride
    if isinstance(m, nn.Conv1d):  # a 1 x k two-dimensional convolution
        x = x.unsqueeze(2)
        kernel, dilation, stride = (1, *kernel), (1, *dilation), (1, *stride)
    cols = F.unfold(x, kernel, dilation=dilation, stride=stride)
    return cols.reshape(x.shape[0], m.groups, -1, cols.shape[-1])


def _conv(m: nn.Conv1d | nn.Conv2d, calls: list[tuple[Tensor, Tensor]]) -> Tensor:
    batch = calls[0][1].shape[0]
    g = _cat([g.reshape(batch, m.groups, m.out_channels // m.groups, -1) for _, g in calls],
             dim=-1)  # [B, groups, C_out/groups, T]
    norms = g.new_zeros(batch)
    if m.weight.requires_grad:
        a = _cat([_unfold(m, a) for a, _ in calls], dim=-1)  # [B, groups, p, T]
        positions, p, d = g.shape[-1], a.shape[2], g.shape[2]
        if positions * (p + d) <= p * d:  # Gram products cost T^2 (p + d), the gradient T p d
            gram = torch.einsum("bgpt,bgps->bgts", a, a) * torch.einsum("bgdt,bgds->bgts", g, g)
            norms = norms + gram.sum((1, 2, 3))
        else:  # per-example weight gradient, transposed: [B, groups, p, C_out/groups]
            # (this layout gives the activation's gradient the [.., p, T] layout of unfold)
            norms = norms + torch.matmul(a, g.transpose(-1, -2)).square().sum((1, 2, 3))
    if m.bias is not None and m.bias.requires_grad:
        norms = norms + g.sum(-1).square().sum((1, 2))
    return norms


def _embedding(m: nn.Embedding, calls: list[tuple[Tensor, Tensor]]) -> Tensor:
    batch = calls[0][1].shape[0]
    idx = _cat([i.reshape(batch, -1) for i, _ in calls], dim=1)  # [B, T]
    g = _positions([g for _, g in calls], m.embedding_dim)  # [B, T, D]
    if m.padding_idx is not None:  # the padding row receives no gradient
        g = g * (idx != m.padding_idx).unsqueeze(-1).to(g.dtype)
    if idx.shape[1] == 1:
        return g.square().sum((1, 2))
    # positions holding the same token add into the same row of the gradient
    same = (idx.unsqueeze(2) == idx.unsqueeze(1)).to(g.dtype)
    return (same * torch.bmm(g, g.transpose(1, 2))).sum((1, 2))


def _normalized(m: nn.Module, x: Tensor) -> Tensor:
    """The normalized input that the affine weight multiplies."""
    if isinstance(m, nn.LayerNorm):
        return F.layer_norm(x, m.normalized_shape, eps=m.eps)
    if isinstance(m, nn.GroupNorm):
        return F.group_norm(x, m.num_groups, eps=m.eps)
    shape = (1, -1) + (1,) * (x.dim() - 2)  # BatchNorm in eval mode: running statistics
    return (x - m.running_mean.view(shape)) * torch.rsqrt(m.running_var.view(shape) + m.eps)


def _per_example_affine(m: nn.Module, t: Tensor) -> Tensor:
    """Sum ``t`` over the positions that share one affine coefficient: ``[B, n_coeffs]``."""
    if isinstance(m, nn.LayerNorm):
        return t.reshape(t.shape[0], -1, *m.normalized_shape).sum(1).flatten(1)
    return t.reshape(t.shape[0], t.shape[1], -1).sum(-1)  # per channel


def _affine_norm(m: nn.Module, calls: list[tuple[Tensor, Tensor]]) -> Tensor:
    norms = calls[0][1].new_zeros(calls[0][1].shape[0])
    if m.weight is not None and m.weight.requires_grad:
        gw = sum(_per_example_affine(m, g * _normalized(m, a)) for a, g in calls)
        norms = norms + gw.square().sum(1)
    if m.bias is not None and m.bias.requires_grad:
        gb = sum(_per_example_affine(m, g) for _, g in calls)
        norms = norms + gb.square().sum(1)
    return norms


_RULES: dict[type[nn.Module], Rule] = {
    nn.Linear: _linear,
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.Embedding: _embedding,
    nn.LayerNorm: _affine_norm,
    nn.GroupNorm: _affine_norm,
    nn.BatchNorm1d: _affine_norm,
    nn.BatchNorm2d: _affine_norm,
}
_BUILTIN = frozenset(_RULES)
_registrations = 0  # part of every cached plan's key: a new rule invalidates the plans


def register_ghost_rule(module_type: type[nn.Module], rule: Rule) -> None:
    """Let the ghost backend cover ``module_type`` (and its subclasses that keep its forward).

    ``rule(module, calls)`` gets one ``(activation, output_gradient)`` pair per call of the
    module in the forward pass (the activation is the call's first tensor argument; both hold
    the batch on dim 0) and returns, differentiably, the per-example squared norm ``[B]`` of the
    gradient with respect to the module's own parameters that require grad
    (``module.parameters(recurse=False)``). For ``out = x * w`` on ``x [B, F]``, called once:
    ``lambda m, calls: (calls[0][0] * calls[0][1]).square().sum(1)``. The backend still refuses
    a model whose parameters get gradient outside the module's calls, and the first call on each
    model is compared with the per-example loop (see
    :func:`noisereg.gradreg.per_example_sq_grad_norms`).

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import (per_example_sq_grad_norms, register_ghost_rule,
    ...                               uncovered_modules)
    >>> class Scale(nn.Module):  # out = x * w: no built-in ghost rule
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = nn.Parameter(torch.ones(2))
    ...     def forward(self, x):
    ...         return x * self.w
    >>> model = nn.Sequential(Scale(), nn.Linear(2, 1))
    >>> def loss(out, t):
    ...     return (out.squeeze(1) - t) ** 2
    >>> x, y = torch.ones(3, 2), torch.zeros(3)
    >>> register_ghost_rule(Scale, lambda m, calls: (calls[0][0] * calls[0][1]).square().sum(1))
    >>> uncovered_modules(model)
    []
    >>> torch.allclose(per_example_sq_grad_norms(model, loss, x, y, backend="ghost"),
    ...                per_example_sq_grad_norms(model, loss, x, y, backend="loop"))
    True
    """
    global _registrations
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"module_type must be a subclass of torch.nn.Module, got {module_type!r}")
    if not callable(rule):
        raise TypeError(f"rule must be callable, got {type(rule).__name__}")
    _RULES[module_type] = rule
    _registrations += 1


def registrations() -> int:
    return _registrations


def _registered(module: nn.Module) -> type[nn.Module] | None:
    """The nearest class of ``module`` with a rule, if its forward is that class's (a subclass
    that overrides forward computes something else: not covered)."""
    for cls in type(module).__mro__:
        if cls in _RULES:
            return cls if type(module).forward is cls.forward else None
    return None


def ghost_rule(module: nn.Module) -> Rule | None:
    cls = _registered(module)
    return None if cls is None else _RULES[cls]


def static_problem(module: nn.Module) -> str | None:
    """Why the rule of a covered module cannot be trusted in its current configuration."""
    if isinstance(module, nn.Embedding) and module.scale_grad_by_freq:
        return "scale_grad_by_freq couples the examples of a batch"
    if isinstance(module, _BatchNorm) and (module.training or module.running_mean is None):
        return "BatchNorm with batch statistics couples the examples of a batch"
    if _registered(module) not in _BUILTIN:  # a registered rule knows its own parameters
        return None
    own = dict(module.named_parameters(recurse=False))
    unknown = sorted(set(own) - {"weight", "bias"})
    if unknown:
        return f"parameters the rule does not know: {', '.join(unknown)}"
    for name in ("weight", "bias"):
        value = getattr(module, name, None)
        if isinstance(value, Tensor) and value.requires_grad and value is not own.get(name):
            return f"{name} is computed from other parameters (parametrization or weight_norm)"
    return None


class Refused(Exception):
    """A backend cannot vouch for the norms of this model; ``losses`` holds the per-example
    losses when a ghost forward pass had already run (so a fallback can reuse them)."""

    def __init__(self, reason: str, losses: Tensor | None = None) -> None:
        super().__init__(reason)
        self.losses = losses


@dataclass(frozen=True)
class _Call:
    """One forward call of a covered module: its tensor arguments (the first is the activation)
    and its output, with their versions at capture (to detect later in-place changes)."""

    inputs: tuple[Tensor, ...]
    versions: tuple[int, ...]
    out: Tensor
    version: int


@contextmanager
def _capture(modules: list[nn.Module], clone: set[int]
             ) -> Iterator[dict[nn.Module, list[_Call | None]]]:
    """Record every forward call of ``modules`` inside the block (None: a call without tensor
    argument or output); the outputs of the modules whose id is in ``clone`` are handed on as
    copies, so later in-place
    changes leave the recorded output intact. Hooks run first, before the user's own."""
    calls: dict[nn.Module, list[_Call | None]] = {m: [] for m in modules}

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Tensor | None:
        inputs = tuple(t for t in (*args, *kwargs.values()) if isinstance(t, Tensor))
        if not inputs or not isinstance(output, Tensor):
            calls[module].append(None)
            return None
        calls[module].append(_Call(inputs, tuple(t._version for t in inputs), output,
                                   output._version))
        return output.clone() if id(module) in clone else None

    handles = [m.register_forward_hook(hook, prepend=True, with_kwargs=True) for m in modules]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def _unaccounted(losses: Tensor, calls: dict[nn.Module, list[_Call]], plan: Plan) -> list[str]:
    """Trainable parameters whose gradient does not flow only through the calls of their module.

    One walk of the autograd graph from the losses; the state of the walk is the covered module
    whose call it is inside (set on the edge into a call's output, cleared on the edge into one
    of its inputs). A parameter's accumulation node reached in any other state than its owner is
    a use the rules do not see. States are per (node, state), so a node shared by several paths
    (a cached ``weight.t()``) is walked once per state.
    """
    entries: dict[tuple[Any, int], int] = {}  # edge into a call's output -> module id
    exits: dict[int, set[tuple[Any, int]]] = {}  # module id -> edges into its calls' inputs
    for m, cs in calls.items():
        exits[id(m)] = set()
        for c in cs:
            entries[(c.out.grad_fn, c.out.output_nr)] = id(m)
            exits[id(m)].update((t.grad_fn, t.output_nr) for t in c.inputs if t.grad_fn is not None)
    problems: dict[str, None] = {}
    stack = [(losses.grad_fn, None)] if losses.grad_fn is not None else []
    seen = set(stack)
    while stack:
        node, inside = stack.pop()
        for child, nr in node.next_functions:
            if child is None:
                continue
            edge = (child, nr)
            state = entries.get(edge)
            if state is None and not (inside is not None and edge in exits[inside]):
                state = inside
            leaf = getattr(child, "variable", None)  # AccumulateGrad: a leaf tensor
            if leaf is not None:
                owner = plan.owner.get(id(leaf))
                if owner is not None and owner != state:
                    problems[plan.outside(leaf, owner)] = None
            elif (child, state) not in seen:
                seen.add((child, state))
                stack.append((child, state))
    return list(problems)


def _call_problems(plan: Plan, calls: dict[nn.Module, list[_Call | None]],
                   batch: int) -> list[str]:
    problems = []
    for m, cs in calls.items():
        label = plan.labels[id(m)]
        for c in cs:
            if c is None:
                problems.append(f"{label} was called without a tensor argument or output")
            elif any(t._version != v for t, v in zip(c.inputs, c.versions)):
                problems.append(f"the input of {label} was modified in place after the call")
            elif (c.inputs[0].dim() == 0 or c.inputs[0].shape[0] != batch
                  or c.out.dim() == 0 or c.out.shape[0] != batch):
                problems.append(f"{label} does not keep the batch ({batch}) on dim 0 (input "
                                f"{tuple(c.inputs[0].shape)}, output {tuple(c.out.shape)})")
    return problems


def _forward(model: nn.Module, loss_fn: LossFn, inputs: Batch, targets: Batch,
             forward: Forward | None, plan: Plan, batch: int
             ) -> tuple[Tensor, dict[nn.Module, list[_Call | None]]]:
    """Per-example losses and the captured calls; repeated (once per newly found module) while
    a covered module's output is modified in place, cloning those outputs from then on."""
    while True:
        with _capture(plan.covered(), plan.clone) as calls:
            outputs = call(model, inputs, forward)
        losses = per_example(loss_fn(outputs, targets), batch)
        modified = {id(m) for m, cs in calls.items() for c in cs
                    if c is not None and c.out._version != c.version}
        if not modified:
            return losses, calls
        plan.clone |= modified


def ghost_losses_and_norms(model: nn.Module, loss_fn: LossFn, inputs: Batch, targets: Batch,
                           *, forward: Forward | None, plan: Plan, batch: int,
                           create_graph: bool) -> tuple[Tensor, Tensor]:
    """One forward pass: per-example losses ``[B]`` and squared gradient norms ``[B]``.

    The losses keep their graph (with ``create_graph=True``),
    so ``losses.mean() + lam * norms.mean()`` can be backpropagated (as ``regularized_loss`` does).
    Raises :class:`Refused` when the norms could be wrong (see the module docstring).
    """
    if plan.ghost_problems:
        raise Refused("; ".join(plan.ghost_problems))
    losses, calls = _forward(model, loss_fn, inputs, targets, forward, plan, batch)
    problems = _call_problems(plan, calls, batch)
    if not problems:
        problems = _unaccounted(losses, calls, plan)
    if problems:
        raise Refused("; ".join(problems), losses)
    flat = [(m, c) for m, cs in calls.items() for c in cs]
    grads = torch.autograd.grad(losses.sum(), [c.out for _, c in flat],
                                create_graph=create_graph, allow_unused=True,
                                materialize_grads=True)
    per_module: dict[nn.Module, list[tuple[Tensor, Tensor]]] = {m: [] for m in calls}
    for (m, c), g in zip(flat, grads):
        a = c.inputs[0]
        per_module[m].append((a if create_graph else a.detach(), g))
    norms = losses.new_zeros(batch)
    with torch.set_grad_enabled(create_graph):
        for m, pairs in per_module.items():
            if pairs:  # a module never called has zero gradient
                norms = norms + plan.rules[id(m)](m, pairs)
    return losses, norms
