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
without biases. Linear layers always use the Gram form (no per-example gradient is ever built);
a convolution with ``T`` output positions, ``p = C_in/groups * prod(kernel)`` and
``d = C_out/groups`` builds the per-example weight gradient (``T p d`` multiply-adds) instead when
that is cheaper than the Gram products (``T^2 (p + d)``), i.e. unless ``T (p + d) <= p d``
(ghost clipping decides by memory instead; here speed matters); norm layers build
theirs (it has the size of the weight, one vector per example). A module called several times in
one forward (weight reuse, e.g. an unrolled recurrence) is handled: its calls are concatenated as
extra positions. Batch must be dim 0 of every covered layer's input and output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from noisereg.gradreg._checks import LossFn, per_example

# One forward call of a module: (input activation, output tensor, output version at capture).
Call = tuple[Tensor, Tensor, int]
# A rule maps a module and its (activation, output gradient) pairs to per-example norms [B].
Rule = Callable[[nn.Module, list[tuple[Tensor, Tensor]]], Tensor]


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters(recurse=False) if p.requires_grad]


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


def _rule(module: nn.Module) -> Rule | None:
    for base, rule in _RULES.items():
        # a subclass that overrides forward computes something else: not covered
        if isinstance(module, base) and type(module).forward is base.forward:
            return rule
    return None


def _why_uncovered(module: nn.Module) -> str | None:
    if _rule(module) is None:
        return "no ghost rule for this module type"
    if isinstance(module, nn.Embedding) and module.scale_grad_by_freq:
        return "scale_grad_by_freq couples the examples of a batch"
    if isinstance(module, _BatchNorm) and (module.training or module.running_mean is None):
        return "BatchNorm with batch statistics couples the examples of a batch"
    return None


def trainable_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Modules that directly own at least one trainable parameter, by qualified name."""
    return {name or type(model).__name__: m for name, m in model.named_modules()
            if _trainable(m)}


def uncovered_modules(model: nn.Module) -> list[str]:
    """Modules with trainable parameters that the ghost backend cannot handle, with the reason.

    Empty when ``per_example_sq_grad_norms(..., backend="ghost")`` applies to ``model``.
    """
    problems, owner = [], {}
    for name, module in trainable_modules(model).items():
        reason = _why_uncovered(module)
        if reason is not None:
            problems.append(f"{name} ({type(module).__name__}): {reason}")
        for p in _trainable(module):
            if id(p) in owner:
                problems.append(f"{name} ({type(module).__name__}): shares a parameter with "
                                f"{owner[id(p)]}")
            owner.setdefault(id(p), name)
    return problems


@contextmanager
def _capture(modules: list[nn.Module]) -> Iterator[dict[nn.Module, list[Call]]]:
    """Record every forward call of ``modules`` (their input and output) inside the block."""
    calls: dict[nn.Module, list[Call]] = {m: [] for m in modules}

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        calls[module].append((inputs[0], output, output._version))

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def ghost_losses_and_norms(model: nn.Module, loss_fn: LossFn,
                           inputs: Tensor, targets: Tensor, *,
                           create_graph: bool) -> tuple[Tensor, Tensor]:
    """One forward pass: per-example losses ``[B]`` and squared gradient norms ``[B]``.

    The losses keep their graph (with ``create_graph=True``),
    so ``losses.mean() + lam * norms.mean()`` can be backpropagated (as ``regularized_loss`` does).
    """
    problems = uncovered_modules(model)
    if problems:
        raise ValueError("backend='ghost' does not cover " + "; ".join(problems)
                         + ". Use backend='vmap' or 'loop'.")
    named = trainable_modules(model)
    modules = list(named.values())
    with _capture(modules) as calls:
        outputs = model(inputs)
    batch = inputs.shape[0]
    losses = per_example(loss_fn(outputs, targets), batch)
    names = {m: n for n, m in named.items()}
    flat: list[tuple[nn.Module, Tensor, Tensor]] = []
    for m in modules:
        for a, out, version in calls[m]:
            if out._version != version:
                raise ValueError(f"the output of {names[m]} ({type(m).__name__}) was modified "
                                 "in place (e.g. ReLU(inplace=True)); the ghost backend needs "
                                 "it intact: use inplace=False or backend='vmap'")
            if a.shape[0] != batch or out.shape[0] != batch:
                raise ValueError(f"{names[m]} ({type(m).__name__}) does not keep the batch on "
                                 f"dim 0 (input {tuple(a.shape)}, batch {batch})")
            flat.append((m, a, out))
    grads = torch.autograd.grad(losses.sum(), [out for _, _, out in flat],
                                create_graph=create_graph, allow_unused=True,
                                materialize_grads=True)
    per_module: dict[nn.Module, list[tuple[Tensor, Tensor]]] = {m: [] for m in modules}
    for (m, a, _), g in zip(flat, grads):
        per_module[m].append((a if create_graph else a.detach(), g))
    norms = losses.new_zeros(batch)
    with torch.set_grad_enabled(create_graph):
        for m, pairs in per_module.items():
            if pairs:  # a module never called has zero gradient
                norms = norms + _rule(m)(m, pairs)
    return losses, norms
