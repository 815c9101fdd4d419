"""Per-example squared gradient norms ``||grad_theta l_i(theta)||^2`` with three backends.

* ``ghost``: one forward and one backward to the layer outputs (:mod:`noisereg.gradreg.ghost`);
  never builds per-example gradients of Linear layers. The fast path.
* ``vmap``: ``torch.func.vmap(torch.func.grad(l_i))`` over the batch with ``functional_call``;
  any module that torch.func supports, memory ``B x #params``.
* ``loop``: one ``autograd.grad`` per example; the plain reference.
* ``auto``: ``ghost`` when :func:`uncovered_modules` is empty, otherwise ``vmap``.

``theta`` is every parameter with ``requires_grad``. ``loss_fn(outputs, targets)`` must return
the per-example losses ``[B]`` (e.g. ``F.cross_entropy(..., reduction="none")``). A per-example
gradient only makes sense when examples do not interact: BatchNorm with batch statistics is
refused by every backend (put it in eval mode or use GroupNorm / LayerNorm; GR, a batch-level
penalty, accepts it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from noisereg._validate import check_choice
from noisereg.gradreg._checks import (
    LossFn,
    check_arguments,
    check_independent_examples,
    per_example,
    trainable_parameters,
    unwrap,
)
from noisereg.gradreg.ghost import ghost_losses_and_norms, uncovered_modules

Backend = Literal["auto", "ghost", "vmap", "loop"]
BACKENDS: tuple[str, ...] = ("auto", "ghost", "vmap", "loop")


def resolve_backend(model: nn.Module, backend: str) -> str:
    check_choice("backend", backend, BACKENDS)
    if backend == "auto":
        return "ghost" if not uncovered_modules(model) else "vmap"
    return backend


def _layer_norm(m: nn.LayerNorm, x: Tensor) -> Tensor:
    dims = tuple(range(-len(m.normalized_shape), 0))
    centered = x - x.mean(dims, keepdim=True)
    y = centered * torch.rsqrt(centered.square().mean(dims, keepdim=True) + m.eps)
    if m.weight is not None:
        y = y * m.weight
    return y if m.bias is None else y + m.bias


@contextmanager
def _explicit_layer_norms(model: nn.Module) -> Iterator[None]:
    """Run every LayerNorm as explicit mean / variance ops inside the block.

    Under ``vmap``, torch.func's batching rule of the fused LayerNorm backward gives wrong
    second derivatives for the layers before it (functorch issue #534; seen with torch 2.13,
    checked against finite differences in the tests); the explicit ops differentiate correctly.
    """
    patched = [m for m in model.modules() if type(m).forward is nn.LayerNorm.forward]
    for m in patched:
        m.forward = partial(_layer_norm, m)
    try:
        yield
    finally:
        for m in patched:
            del m.forward


def _vmap_norms(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor,
                create_graph: bool) -> Tensor:
    params = {n: (p if create_graph else p.detach())
              for n, p in model.named_parameters() if p.requires_grad}

    def loss_one(p: dict[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
        out = functional_call(model, p, (x.unsqueeze(0),))
        return per_example(loss_fn(out, t.unsqueeze(0)), 1)[0]

    with _explicit_layer_norms(model):
        grads = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, inputs, targets)
    return sum(g.flatten(1).square().sum(1) for g in grads.values())


def _loop_norms(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor,
                create_graph: bool) -> Tensor:
    params = trainable_parameters(model)
    norms = []
    for i in range(inputs.shape[0]):
        loss = per_example(loss_fn(model(inputs[i:i + 1]), targets[i:i + 1]), 1)[0]
        grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True,
                                    materialize_grads=True)
        norms.append(sum(g.square().sum() for g in grads))
    return torch.stack(norms)


def per_example_sq_grad_norms(model: nn.Module, loss_fn: LossFn, inputs: Tensor,
                              targets: Tensor, *, backend: Backend = "auto",
                              create_graph: bool = False) -> Tensor:
    """``||grad_theta l_i||^2`` for every example ``i`` of the batch, a tensor ``[B]``.

    ``l_i = loss_fn(model(inputs), targets)[i]``. With ``create_graph=True`` the result is
    differentiable with respect to the parameters (for penalties such as PEGR); otherwise it
    is detached. A ``DistributedDataParallel`` model is accepted (the vmap and loop backends
    work on its ``.module``). See the module docstring for the backends.
    """
    check_arguments(model, loss_fn, inputs, targets)
    check_independent_examples(model)
    backend = resolve_backend(model, backend)
    with torch.enable_grad():  # the norms need a backward pass even inside torch.no_grad()
        if backend == "ghost":
            return ghost_losses_and_norms(model, loss_fn, inputs, targets,
                                          create_graph=create_graph)[1]
        fn = _vmap_norms if backend == "vmap" else _loop_norms
        return fn(unwrap(model), loss_fn, inputs, targets, create_graph)
