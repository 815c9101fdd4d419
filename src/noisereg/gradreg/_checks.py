"""Argument checks shared by the per-example norms and the penalties."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

LossFn = Callable[[Tensor, Tensor], Tensor]


def per_example(losses: Tensor, batch: int) -> Tensor:
    """Check that ``loss_fn`` returned per-example losses of shape ``[batch]``."""
    if not isinstance(losses, Tensor):
        raise TypeError(f"loss_fn must return a tensor of per-example losses, got "
                        f"{type(losses).__name__}")
    if losses.dim() == 0:
        raise ValueError("loss_fn returned a scalar; it must return per-example losses of shape "
                         f"[{batch}] (e.g. reduction='none')")
    if tuple(losses.shape) != (batch,):
        raise ValueError(f"loss_fn must return per-example losses of shape [{batch}], got "
                         f"{tuple(losses.shape)}")
    return losses


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (requires_grad=True)")
    return params


def check_model_and_loss(model: nn.Module, loss_fn: LossFn) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")


def check_arguments(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor) -> None:
    """Validate the arguments shared by the norms and the penalties."""
    check_model_and_loss(model, loss_fn)
    for name, value in (("inputs", inputs), ("targets", targets)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() == 0 or value.shape[0] == 0:
            raise ValueError(f"{name} must have a non-empty batch dimension 0, got shape "
                             f"{tuple(value.shape)}")
    if targets.shape[0] != inputs.shape[0]:
        raise ValueError(f"targets must have the batch size of inputs ({inputs.shape[0]}), "
                         f"got {targets.shape[0]}")
    trainable_parameters(model)


def check_independent_examples(model: nn.Module) -> None:
    """Per-example gradients need examples that do not interact in the forward pass."""
    for name, m in model.named_modules():
        if isinstance(m, _BatchNorm) and (m.training or m.running_mean is None):
            raise ValueError(f"{name} ({type(m).__name__}) uses batch statistics, so the loss of "
                             "one example depends on the others and per-example gradients are "
                             "undefined; call model.eval() on it or use GroupNorm/LayerNorm")
