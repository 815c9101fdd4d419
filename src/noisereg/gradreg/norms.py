"""Per-example squared gradient norms ``||grad_theta l_i(theta)||^2`` with three backends.

* ``ghost``: one forward and one backward to the layer outputs (:mod:`noisereg.gradreg.ghost`);
  never builds per-example gradients of Linear layers. The fast path; it refuses a model whose
  gradients it cannot all account for.
* ``vmap``: ``torch.func.vmap(torch.func.grad(l_i))`` over the batch with ``functional_call``;
  any module that torch.func supports, memory ``B x #params``.
* ``loop``: one ``autograd.grad`` per example; the plain reference, works for any model.
* ``auto``: ghost, else vmap, else loop, chosen per model: ghost when it does not refuse, vmap
  when it runs (GRU/LSTM do not under torch.func). Each skipped backend and its reason are
  recorded (:func:`noisereg.gradreg.backend_choice`) and a :class:`FallbackWarning` is issued
  once per model configuration.

The first call of ghost or vmap on a model (per configuration) is checked: the norm of the
first example is compared with the loop's (relative tolerance 1e-6 in float64, 1e-3 in float32,
5e-2 in lower precision); a mismatch refuses the backend. The check is skipped when the forward
pass draws random numbers (dropout in training mode), since the two passes would differ anyway.

``theta`` is every parameter with ``requires_grad``. ``per_example_loss(outputs, targets)``
must return the per-example losses ``[B]`` (e.g. ``F.cross_entropy(..., reduction="none")``);
``inputs`` and ``targets`` are tensors, tuples or dicts of tensors with the batch on dim 0, and
``outputs = model(inputs)`` (``model(*inputs)``, ``model(**inputs)``) or
``forward(model, inputs)``. A per-example gradient only makes sense when examples do not
interact: BatchNorm with batch statistics is refused by every backend (put it in eval mode or
use GroupNorm / LayerNorm; GR, a batch-level penalty, accepts it). Computed with
``create_graph=True``, attention runs on the math kernel (double backward needs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from noisereg._calls import (
    Batch,
    Forward,
    call,
    check_batch,
    check_forward,
    double_backward_kernels,
    in_dims,
    take,
    unsqueeze,
)
from noisereg._validate import check_choice
from noisereg.gradreg._checks import LossFn, check_model_and_loss, per_example, unwrap
from noisereg.gradreg._plan import Plan, plan_for
from noisereg.gradreg.ghost import Refused, ghost_losses_and_norms

Backend = Literal["auto", "ghost", "vmap", "loop"]
BACKENDS: tuple[str, ...] = ("auto", "ghost", "vmap", "loop")
_PROBE_RTOL = {torch.float64: 1e-6, torch.float32: 1e-3}


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


class _Bound(nn.Module):
    """The call of ``model`` on a batch as a module, so ``functional_call`` can swap the
    parameters of ``model`` (as ``model.*``) for a custom ``forward`` too."""

    def __init__(self, model: nn.Module, forward: Forward | None) -> None:
        super().__init__()
        self.model = model
        self.__dict__["custom"] = forward  # not registered as a submodule if it is one

    def forward(self, inputs: Batch) -> object:
        return call(self.model, inputs, self.custom)


def _vmap_norms(model: nn.Module, loss_fn: LossFn, inputs: Batch, targets: Batch,
                forward: Forward | None, plan: Plan, create_graph: bool) -> Tensor:
    """Every (module, attribute) holding a trainable parameter is swapped once and the
    gradients of a tied parameter's aliases are summed: ``functional_call``'s own weight tying
    swaps a module registered under two names twice and leaves the copy in the model."""
    bound = _Bound(model, forward)
    params = {f"model.{n}": (p if create_graph else p.detach()) for n, p in plan.aliases.items()}

    def loss_one(p: dict[str, Tensor], x: Batch, t: Batch) -> Tensor:
        out = functional_call(bound, p, (unsqueeze(x),), tie_weights=False)
        return per_example(loss_fn(out, unsqueeze(t)), 1)[0]

    with _explicit_layer_norms(model):
        grads = vmap(grad(loss_one), in_dims=(None, in_dims(inputs), in_dims(targets)),
                     randomness="different")(params, inputs, targets)
    summed: dict[int, Tensor] = {}
    for name, p in plan.aliases.items():
        g = grads[f"model.{name}"]
        summed[id(p)] = summed[id(p)] + g if id(p) in summed else g
    return sum(g.reshape(g.shape[0], -1).square().sum(1) for g in summed.values())


def _loop_norms(model: nn.Module, loss_fn: LossFn, inputs: Batch, targets: Batch,
                forward: Forward | None, plan: Plan, create_graph: bool, batch: int) -> Tensor:
    params = list(plan.parameters.values())
    norms = []
    for i in range(batch):
        one = slice(i, i + 1)
        loss = per_example(loss_fn(call(model, take(inputs, one), forward), take(targets, one)),
                           1)[0]
        grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True,
                                    materialize_grads=True)
        norms.append(sum(g.square().sum() for g in grads))
    return torch.stack(norms)


def _rng_states() -> list[Tensor]:
    """Copies of the global generators' states (read only), to tell a stochastic forward."""
    states = [torch.get_rng_state()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states += torch.cuda.get_rng_state_all()
    return states


def _disagreement(norms: Tensor, model: nn.Module, loss_fn: LossFn, inputs: Batch,
                  targets: Batch, forward: Forward | None, plan: Plan) -> str | None:
    """Why the norm of the first example is not the loop's (None when it is)."""
    one = slice(0, 1)
    reference = _loop_norms(model, loss_fn, take(inputs, one), take(targets, one), forward,
                            plan, False, 1)[0]
    got = norms[0].detach()
    scale = torch.maximum(got.abs(), reference.abs())
    error = float((got - reference).abs() / scale) if scale > 0 else 0.0
    if error <= _PROBE_RTOL.get(got.dtype, 5e-2):
        return None
    return (f"its norm of the first example differs from the per-example loop's by {error:.1e} "
            "(relative), e.g. a layer without the batch on dim 0 or examples that interact")


def _attempt(name: str, model: nn.Module, loss_fn: LossFn, inputs: Batch, targets: Batch,
             forward: Forward | None, plan: Plan, batch: int,
             create_graph: bool) -> tuple[Tensor | None, Tensor]:
    """Losses (ghost only) and norms from backend ``name``, checked against the loop on the first
    call of the plan; raises :class:`Refused` when the backend cannot vouch for them."""
    inner = unwrap(model)
    probe = name != "loop" and name not in plan.checked
    states = _rng_states() if probe else []
    losses = None
    if name == "ghost":
        losses, norms = ghost_losses_and_norms(model, loss_fn, inputs, targets, forward=forward,
                                               plan=plan, batch=batch,
                                               create_graph=create_graph)
    elif name == "vmap":
        norms = _vmap_norms(inner, loss_fn, inputs, targets, forward, plan, create_graph)
    else:
        norms = _loop_norms(inner, loss_fn, inputs, targets, forward, plan, create_graph, batch)
    if probe:
        if all(torch.equal(a, b) for a, b in zip(states, _rng_states())):
            problem = _disagreement(norms, inner, loss_fn, inputs, targets, forward, plan)
            if problem is not None:
                raise Refused(problem, losses)
        plan.checked.add(name)
    return losses, norms


def losses_and_norms(model: nn.Module, loss_fn: LossFn, inputs: Batch, targets: Batch, *,
                     forward: Forward | None, backend: str,
                     create_graph: bool) -> tuple[Tensor | None, Tensor]:
    """Per-example squared gradient norms ``[B]`` and, when a ghost forward pass ran, the
    per-example losses with their graph (None otherwise). ``auto`` tries ghost, vmap, loop."""
    check_choice("backend", backend, BACKENDS)
    check_model_and_loss(model, loss_fn)
    check_forward(forward)
    batch = check_batch(inputs, targets)
    plan = plan_for(unwrap(model))
    if not plan.parameters:
        raise ValueError("model has no trainable parameters (requires_grad=True)")
    plan.check_independent_examples()
    names = [b for b in BACKENDS[1:] if b not in plan.refused] if backend == "auto" else [backend]
    losses = None
    # the norms need a backward pass even inside torch.no_grad()
    with torch.enable_grad(), double_backward_kernels() if create_graph else nullcontext():
        for name in names:
            try:
                found, norms = _attempt(name, model, loss_fn, inputs, targets, forward, plan,
                                        batch, create_graph)
            except Refused as refusal:
                if backend != "auto":
                    raise ValueError(f"backend={name!r} cannot vouch for the norms of this "
                                     f"model: {refusal}. Use backend='auto' (it falls back to an "
                                     "exact backend), 'vmap' or 'loop'") from None
                plan.refused[name] = str(refusal)
                losses = refusal.losses if refusal.losses is not None else losses
                continue
            except Exception as error:  # torch.func cannot run this model: the loop can
                if backend != "auto" or name != "vmap":
                    raise
                plan.refused[name] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                continue
            plan.use(name, backend, unwrap(model))
            return (found if found is not None else losses), norms
    raise AssertionError("the loop backend never refuses")  # pragma: no cover


def per_example_sq_grad_norms(model: nn.Module, per_example_loss: LossFn, inputs: Batch,
                              targets: Batch, *, forward: Forward | None = None,
                              backend: Backend = "auto", create_graph: bool = False) -> Tensor:
    """``||grad_theta l_i||^2`` for every example ``i`` of the batch, a tensor ``[B]``.

    ``l_i = per_example_loss(model(inputs), targets)[i]`` (or ``forward(model, inputs)`` for the
    outputs). With ``create_graph=True`` the result is differentiable with respect to the
    parameters (for penalties such as PEGR); otherwise it is detached. A
    ``DistributedDataParallel`` model is accepted (the vmap and loop backends work on its
    ``.module``). See the module docstring for the backends and the batch formats.

    For a linear model and squared loss ``||grad_w l_i||^2 = r_i^2 ||x_i||^2``:

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import per_example_sq_grad_norms
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.zeros_(model.weight)  # residuals r = -y
    >>> def loss(out, t):  # l_i = r_i^2 / 2, grad_w l_i = r_i x_i
    ...     return 0.5 * (out.squeeze(1) - t) ** 2
    >>> x, y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([1.0, 2.0])
    >>> per_example_sq_grad_norms(model, loss, x, y).tolist()  # 1 * 1, 4 * 25
    [1.0, 100.0]
    >>> per_example_sq_grad_norms(model, loss, x, y, backend="loop").tolist()
    [1.0, 100.0]
    """
    return losses_and_norms(model, per_example_loss, inputs, targets, forward=forward,
                            backend=backend, create_graph=create_graph)[1]
