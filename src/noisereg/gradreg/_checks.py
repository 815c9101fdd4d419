"""Argument checks shared by the per-example norms and the penalties."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

LossFn = Callable[[object, object], Tensor]


def per_example(losses: Tensor, batch: int) -> Tensor:
    """Check that ``per_example_loss`` returned per-example losses of shape ``[batch]``."""
    if not isinstance(losses, Tensor):
        raise TypeError(f"per_example_loss must return a tensor of per-example losses, got "
                        f"{type(losses).__name__}")
    if losses.dim() == 0:
        raise ValueError("per_example_loss returned a scalar; it must return per-example losses "
                         f"of shape [{batch}] (e.g. reduction='none')")
    if tuple(losses.shape) != (batch,):
        raise ValueError(f"per_example_loss must return per-example losses of shape [{batch}], "
                         f"got {tuple(losses.shape)}")
    return losses


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def check_model_and_loss(model: nn.Module, loss_fn: LossFn) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"per_example_loss must be callable, got {type(loss_fn).__name__}")
