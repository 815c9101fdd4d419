"""Gradient penalties: per-example (PEGR, Meng, Cao, Zou 2023) and full-batch (GR, Barrett &
Dherin 2021), and the regularized training objective.

With per-example losses ``l_i`` on a batch of size ``B`` and ``L_S = (1/B) sum_i l_i``:

    P_PEGR = (1/B) sum_i ||grad_theta l_i||^2          P_GR = ||grad_theta L_S||^2
    P_PEGR = P_GR + (1/B) sum_i ||grad_theta l_i - grad_theta L_S||^2

so PEGR is GR plus the variance of the per-example gradients; ``lambda`` (``lam``) is the
penalty weight of the objective ``L_S + lambda * P``. Both penalties are built with
``create_graph=True`` and are meant to be backpropagated (double backprop).

Training in one line::

    loss = regularized_loss(model, loss_fn, x, y, lam=1e-3)   # or penalty="gr"
    loss.backward(); optimizer.step()

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

from noisereg._validate import check_choice, check_nonnegative
from noisereg.gradreg._checks import (
    LossFn,
    check_arguments,
    check_independent_examples,
    check_model_and_loss,
    per_example,
    trainable_parameters,
    unwrap,
)
from noisereg.gradreg.ghost import ghost_losses_and_norms
from noisereg.gradreg.norms import Backend, per_example_sq_grad_norms, resolve_backend

Penalty = Literal["pegr", "gr"]
PENALTIES: tuple[str, ...] = ("pegr", "gr")


def _losses(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor) -> Tensor:
    return per_example(loss_fn(model(inputs), targets), inputs.shape[0])


def _sq_norm_of_mean_grad(model: nn.Module, losses: Tensor) -> Tensor:
    grads = torch.autograd.grad(losses.mean(), trainable_parameters(model), create_graph=True,
                                allow_unused=True, materialize_grads=True)
    return sum(g.square().sum() for g in grads)


def pegr_penalty(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                 backend: Backend = "auto") -> Tensor:
    """``P_PEGR = (1/B) sum_i ||grad_theta l_i||^2``, differentiable (Meng, Cao, Zou 2023)."""
    return per_example_sq_grad_norms(model, loss_fn, inputs, targets, backend=backend,
                                     create_graph=True).mean()


def gr_penalty(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor) -> Tensor:
    """``P_GR = ||grad_theta L_S||^2`` of the batch-mean loss, differentiable (Barrett & Dherin
    2021)."""
    check_arguments(model, loss_fn, inputs, targets)
    return _sq_norm_of_mean_grad(model, _losses(model, loss_fn, inputs, targets))


def loss_and_penalty(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                     penalty: Penalty = "pegr",
                     backend: Backend = "auto") -> tuple[Tensor, Tensor]:
    """``(L_S, P)`` from one forward pass when possible (PEGR with the ghost backend, GR)."""
    check_arguments(model, loss_fn, inputs, targets)
    check_choice("penalty", penalty, PENALTIES)
    if penalty == "pegr":
        check_independent_examples(model)
    if penalty == "pegr" and resolve_backend(model, backend) == "ghost":
        losses, norms = ghost_losses_and_norms(model, loss_fn, inputs, targets, create_graph=True)
        return losses.mean(), norms.mean()
    losses = _losses(model, loss_fn, inputs, targets)
    if penalty == "gr":
        return losses.mean(), _sq_norm_of_mean_grad(model, losses)
    return losses.mean(), pegr_penalty(unwrap(model), loss_fn, inputs, targets, backend=backend)


def regularized_loss(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                     lam: float, penalty: Penalty = "pegr", backend: Backend = "auto") -> Tensor:
    """``L_S + lam * P`` with ``P`` the PEGR or GR penalty, ready for ``.backward()``.

    ``lam = 0`` returns ``L_S`` alone without computing the penalty (plain training).
    """
    lam = check_nonnegative("lam", lam)
    if lam == 0:
        check_arguments(model, loss_fn, inputs, targets)
        check_choice("penalty", penalty, PENALTIES)
        return _losses(model, loss_fn, inputs, targets).mean()
    data, pen = loss_and_penalty(model, loss_fn, inputs, targets, penalty=penalty,
                                 backend=backend)
    return data + lam * pen


class PenalizedLoss:
    """The objective ``L_S + lam * P`` as a callable: ``PEGR(model, loss_fn, lam)(x, y)`` returns
    the loss to backpropagate; ``last_loss`` and ``last_penalty`` keep the two terms of the last
    call (floats, for logging)."""

    penalty: Penalty

    def __init__(self, model: nn.Module, loss_fn: LossFn, lam: float, *,
                 backend: Backend = "auto") -> None:
        check_model_and_loss(model, loss_fn)
        self.model, self.loss_fn = model, loss_fn
        self.lam = check_nonnegative("lam", lam)
        self.backend = resolve_backend(unwrap(model), backend)
        self.last_loss = self.last_penalty = float("nan")

    def __call__(self, inputs: Tensor, targets: Tensor) -> Tensor:
        data, pen = loss_and_penalty(self.model, self.loss_fn, inputs, targets,
                                     penalty=self.penalty, backend=self.backend)
        self.last_loss, self.last_penalty = float(data.detach()), float(pen.detach())
        return data + self.lam * pen


class PEGR(PenalizedLoss):
    """``L_S + lam * P_PEGR`` as a callable (see :class:`PenalizedLoss`)."""

    penalty: Penalty = "pegr"


class GR(PenalizedLoss):
    """``L_S + lam * P_GR`` as a callable (see :class:`PenalizedLoss`)."""

    penalty: Penalty = "gr"
