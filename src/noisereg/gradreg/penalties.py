"""Gradient penalties: per-example (PEGR, Meng, Cao, Zou 2023) and full-batch (GR, Barrett &
Dherin 2021), and the regularized training objective.

With per-example losses ``l_i`` on a batch of size ``B`` and ``L_S = (1/B) sum_i l_i``:

    P_PEGR = (1/B) sum_i ||grad_theta l_i||^2          P_GR = ||grad_theta L_S||^2
    P_PEGR = P_GR + (1/B) sum_i ||grad_theta l_i - grad_theta L_S||^2

so PEGR is GR plus the variance of the per-example gradients; ``lambda`` (``lam``) is the
penalty weight of the objective ``L_S + lambda * P``. Both penalties are built with
``create_graph=True`` and are meant to be backpropagated (double backprop).

Training in one line, with one forward pass for the loss and the penalty (ghost backend)::

    loss = regularized_loss(model, per_example_loss, x, y, lam=1e-3)   # or penalty="gr"
    loss.backward(); optimizer.step()

``per_example_loss(outputs, targets)`` returns the losses ``[B]``; ``x`` and ``y`` may be
tensors, tuples or dicts of tensors (see :mod:`noisereg.gradreg.norms`), ``forward(model, x)``
replaces ``model(x)``. The penalties' forward passes run attention on the math kernel (double
backward through the fused CPU kernels is not implemented).

Under ``DistributedDataParallel`` pass the wrapped model: the ghost backend runs one forward
through the wrapper (so DDP prepares its gradient reduction) and takes the layer-output
gradients with an out-of-place ``torch.autograd.grad(create_graph=True)``, which fires no DDP
hook; the single ``.backward()`` of ``loss + lam * penalty`` then all-reduces every parameter's
gradient once. PEGR is a mean over examples, so with equal per-rank batches the averaged gradient
is the single-process gradient of the global batch. With the vmap and loop backends the data loss
still goes through the wrapper and the penalty is computed on ``ddp.module``. GR is not a mean over
examples: under DDP it penalizes each rank's local batch gradient (the mean of local GRs).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from noisereg._calls import (
    Batch,
    Forward,
    call,
    check_batch,
    check_forward,
    double_backward_kernels,
)
from noisereg._validate import check_choice, check_nonnegative
from noisereg.gradreg._checks import LossFn, check_model_and_loss, per_example, unwrap
from noisereg.gradreg._plan import BackendChoice, backend_choice, plan_for
from noisereg.gradreg.norms import BACKENDS, Backend, losses_and_norms

Penalty = Literal["pegr", "gr"]
PENALTIES: tuple[str, ...] = ("pegr", "gr")


def _losses(model: nn.Module, loss_fn: LossFn, inputs: Batch, targets: Batch,
            forward: Forward | None) -> Tensor:
    batch = check_batch(inputs, targets)
    return per_example(loss_fn(call(model, inputs, forward), targets), batch)


def pegr_penalty(model: nn.Module, per_example_loss: LossFn, inputs: Batch, targets: Batch, *,
                 forward: Forward | None = None, backend: Backend = "auto") -> Tensor:
    """``P_PEGR = (1/B) sum_i ||grad_theta l_i||^2``, differentiable (Meng, Cao, Zou 2023).

    With per-example norms ``r_i^2 ||x_i||^2 = 1, 100``:

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import pegr_penalty
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.zeros_(model.weight)  # residuals r = -y
    >>> def loss(out, t):  # l_i = r_i^2 / 2, grad_w l_i = r_i x_i
    ...     return 0.5 * (out.squeeze(1) - t) ** 2
    >>> x, y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([1.0, 2.0])
    >>> pegr_penalty(model, loss, x, y).item()  # (1 + 100) / 2
    50.5
    """
    return losses_and_norms(model, per_example_loss, inputs, targets, forward=forward,
                            backend=backend, create_graph=True)[1].mean()


def gr_penalty(model: nn.Module, per_example_loss: LossFn, inputs: Batch, targets: Batch, *,
               forward: Forward | None = None) -> Tensor:
    """``P_GR = ||grad_theta L_S||^2`` of the batch-mean loss, differentiable (Barrett & Dherin
    2021).

    ``grad_w L_S = (r_1 x_1 + r_2 x_2) / 2 = (-3.5, -4)``:

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import gr_penalty
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.zeros_(model.weight)  # residuals r = -y
    >>> def loss(out, t):  # l_i = r_i^2 / 2, grad_w l_i = r_i x_i
    ...     return 0.5 * (out.squeeze(1) - t) ** 2
    >>> x, y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([1.0, 2.0])
    >>> gr_penalty(model, loss, x, y).item()  # 3.5^2 + 4^2
    28.25
    """
    return loss_and_penalty(model, per_example_loss, inputs, targets, penalty="gr",
                            forward=forward)[1]


def loss_and_penalty(model: nn.Module, per_example_loss: LossFn, inputs: Batch,
                     targets: Batch, *, penalty: Penalty = "pegr", backend: Backend = "auto",
                     forward: Forward | None = None) -> tuple[Tensor, Tensor]:
    """``(L_S, P)`` from one forward pass when possible (PEGR with the ghost backend, GR).

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import loss_and_penalty
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.zeros_(model.weight)  # residuals r = -y
    >>> def loss(out, t):  # l_i = r_i^2 / 2, grad_w l_i = r_i x_i
    ...     return 0.5 * (out.squeeze(1) - t) ** 2
    >>> x, y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([1.0, 2.0])
    >>> data, penalty = loss_and_penalty(model, loss, x, y)
    >>> data.item(), penalty.item()  # (1/2 + 4/2) / 2, (1 + 100) / 2
    (1.25, 50.5)
    """
    check_choice("penalty", penalty, PENALTIES)
    if penalty == "pegr":
        losses, norms = losses_and_norms(model, per_example_loss, inputs, targets,
                                         forward=forward, backend=backend, create_graph=True)
        if losses is None:  # vmap / loop: the data loss through the model as given (DDP)
            losses = _losses(model, per_example_loss, inputs, targets, forward)
        return losses.mean(), norms.mean()
    check_model_and_loss(model, per_example_loss)
    check_forward(forward)
    params = list(plan_for(unwrap(model)).parameters.values())
    if not params:
        raise ValueError("model has no trainable parameters (requires_grad=True)")
    with torch.enable_grad(), double_backward_kernels():
        data = _losses(model, per_example_loss, inputs, targets, forward).mean()
        grads = torch.autograd.grad(data, params, create_graph=True, allow_unused=True,
                                    materialize_grads=True)
    return data, sum(g.square().sum() for g in grads)


def regularized_loss(model: nn.Module, per_example_loss: LossFn, inputs: Batch, targets: Batch,
                     *, lam: float, penalty: Penalty = "pegr", backend: Backend = "auto",
                     forward: Forward | None = None) -> Tensor:
    """``L_S + lam * P`` with ``P`` the PEGR or GR penalty, ready for ``.backward()``.

    ``lam = 0`` returns ``L_S`` alone without computing the penalty (plain training).

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import regularized_loss
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.zeros_(model.weight)  # residuals r = -y
    >>> def loss(out, t):  # l_i = r_i^2 / 2, grad_w l_i = r_i x_i
    ...     return 0.5 * (out.squeeze(1) - t) ** 2
    >>> x, y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([1.0, 2.0])
    >>> round(regularized_loss(model, loss, x, y, lam=0.1).item(), 4)  # 1.25 + 0.1 * 50.5
    6.3
    >>> regularized_loss(model, loss, x, y, lam=1.0, penalty="gr").item()  # 1.25 + 28.25
    29.5
    >>> regularized_loss(model, loss, x, y, lam=0.0).item()
    1.25
    """
    lam = check_nonnegative("lam", lam)
    if lam == 0:
        check_choice("penalty", penalty, PENALTIES)
        check_choice("backend", backend, BACKENDS)
        check_model_and_loss(model, per_example_loss)
        check_forward(forward)
        return _losses(model, per_example_loss, inputs, targets, forward).mean()
    data, pen = loss_and_penalty(model, per_example_loss, inputs, targets, penalty=penalty,
                                 backend=backend, forward=forward)
    return data + lam * pen


class PenalizedLoss:
    """The objective ``L_S + lam * P`` as a callable: ``PEGR(model, per_example_loss, lam)(x, y)``
    returns the loss to backpropagate (one forward pass with the ghost backend);
    ``last_loss`` and ``last_penalty`` keep the two terms of the last call (floats, for
    logging) and :attr:`choice` the backend ``auto`` uses and why.

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import PEGR
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.zeros_(model.weight)  # residuals r = -y
    >>> def loss(out, t):  # l_i = r_i^2 / 2, grad_w l_i = r_i x_i
    ...     return 0.5 * (out.squeeze(1) - t) ** 2
    >>> x, y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([1.0, 2.0])
    >>> objective = PEGR(model, loss, lam=0.1)
    >>> round(objective(x, y).item(), 4), objective.last_loss, objective.last_penalty
    (6.3, 1.25, 50.5)
    >>> objective.choice
    BackendChoice(backend='ghost', refused={})
    """

    penalty: Penalty

    def __init__(self, model: nn.Module, per_example_loss: LossFn, lam: float, *,
                 backend: Backend = "auto", forward: Forward | None = None) -> None:
        check_model_and_loss(model, per_example_loss)
        check_forward(forward)
        self.model, self.loss_fn, self.forward = model, per_example_loss, forward
        self.lam = check_nonnegative("lam", lam)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.last_loss = self.last_penalty = float("nan")

    @property
    def choice(self) -> BackendChoice | None:
        """The backend ``auto`` used in the last call and why it skipped faster ones (PEGR)."""
        return backend_choice(unwrap(self.model))

    def __call__(self, inputs: Batch, targets: Batch) -> Tensor:
        data, pen = loss_and_penalty(self.model, self.loss_fn, inputs, targets,
                                     penalty=self.penalty, backend=self.backend,
                                     forward=self.forward)
        self.last_loss, self.last_penalty = float(data.detach()), float(pen.detach())
        return data + self.lam * pen


class PEGR(PenalizedLoss):
    """``L_S + lam * P_PEGR`` as a callable (see :class:`PenalizedLoss`).

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import PEGR
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.zeros_(model.weight)  # residuals r = -y
    >>> def loss(out, t):  # l_i = r_i^2 / 2, grad_w l_i = r_i x_i
    ...     return 0.5 * (out.squeeze(1) - t) ** 2
    >>> x, y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([1.0, 2.0])
    >>> PEGR(model, loss, lam=1.0)(x, y).item()  # 1.25 + (1 + 100) / 2
    51.75
    """

    penalty: Penalty = "pegr"


class GR(PenalizedLoss):
    """``L_S + lam * P_GR`` as a callable (see :class:`PenalizedLoss`).

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import GR
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.zeros_(model.weight)  # residuals r = -y
    >>> def loss(out, t):  # l_i = r_i^2 / 2, grad_w l_i = r_i x_i
    ...     return 0.5 * (out.squeeze(1) - t) ** 2
    >>> x, y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([1.0, 2.0])
    >>> GR(model, loss, lam=1.0)(x, y).item()  # 1.25 + 3.5^2 + 4^2
    29.5
    """

    penalty: Penalty = "gr"
