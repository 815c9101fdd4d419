"""Calling a model on a batch in the formats models take, and the kernels double backward needs.

A batch is a tensor (``model(batch)``), a tuple or list (``model(*batch)``) or a dict
(``model(**batch)``) whose tensors all hold the batch on dim 0; other values in a tuple or dict
(flags, ``None``) are passed unchanged to every call, also when the batch is split into
examples. ``forward(model, batch)`` replaces the call when given (e.g.
``lambda m, b: m(**b).logits`` for a HuggingFace model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

Batch = Tensor | tuple | list | Mapping[str, Any]
Forward = Callable[[nn.Module, Any], Any]


def _map(batch: Batch, tensor: Callable[[Tensor], Any],
         other: Callable[[Any], Any] = lambda v: v) -> Any:
    """``batch`` with ``tensor`` applied to its tensors and ``other`` to its other values."""
    def leaf(v: Any) -> Any:
        return tensor(v) if isinstance(v, Tensor) else other(v)

    if isinstance(batch, Tensor):
        return tensor(batch)
    if isinstance(batch, Mapping):
        return {k: leaf(v) for k, v in batch.items()}
    return type(batch)(leaf(v) for v in batch)


def _tensors(name: str, batch: Any) -> list[Tensor]:
    if isinstance(batch, Tensor):
        return [batch]
    if isinstance(batch, (tuple, list, Mapping)):
        values = batch.values() if isinstance(batch, Mapping) else batch
        tensors = [v for v in values if isinstance(v, Tensor)]
        if tensors:
            return tensors
    raise TypeError(f"{name} must be a tensor, or a tuple, list or dict holding tensors with the "
                    f"batch on dim 0; got {type(batch).__name__}"
                    + (" without tensors" if isinstance(batch, (tuple, list, Mapping)) else ""))


def batch_size(name: str, batch: Any) -> int:
    """The common size of dim 0 of the tensors of ``batch`` (which may be 0)."""
    tensors = _tensors(name, batch)
    if any(t.dim() == 0 for t in tensors):
        raise ValueError(f"{name} must hold tensors with a batch dimension 0, got a 0-d tensor")
    sizes = sorted({t.shape[0] for t in tensors})
    if len(sizes) > 1:
        raise ValueError(f"the tensors of {name} must share their batch size (dim 0), got "
                         f"sizes {sizes}")
    return sizes[0]


def check_batch(inputs: Any, targets: Any) -> int:
    """Validate ``inputs`` and ``targets``; return the batch size (>= 1)."""
    batch = batch_size("inputs", inputs)
    if batch == 0:
        raise ValueError("inputs must have a non-empty batch (dim 0 of size >= 1)")
    other = batch_size("targets", targets)
    if other != batch:
        raise ValueError(f"targets must have the batch size of inputs ({batch}), got {other}")
    return batch


def check_forward(forward: Forward | None) -> None:
    if forward is not None and not callable(forward):
        raise TypeError(f"forward must be None or a callable forward(model, inputs), got "
                        f"{type(forward).__name__}")


def call(model: nn.Module, inputs: Batch, forward: Forward | None = None) -> Any:
    """``forward(model, inputs)``, else ``model`` called on ``inputs`` by its format."""
    if forward is not None:
        return forward(model, inputs)
    if isinstance(inputs, Tensor):
        return model(inputs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(*inputs)


def take(batch: Batch, index: slice) -> Batch:
    """The examples ``index`` of ``batch`` (every tensor sliced on dim 0)."""
    return _map(batch, lambda t: t[index])


def unsqueeze(batch: Batch) -> Batch:
    """A batch of one from a single example (dim 0 added to every tensor)."""
    return _map(batch, lambda t: t.unsqueeze(0))


def in_dims(batch: Batch) -> Any:
    """``torch.func.vmap`` in_dims mapping ``batch``'s tensors over dim 0, other values not."""
    return _map(batch, lambda t: 0, lambda v: None)


@contextmanager
def double_backward_kernels() -> Iterator[None]:
    """Select the math kernel of scaled-dot-product attention inside the block.

    The fused CPU kernels (flash attention) have no derivative of their backward, so a gradient
    penalty or a Hessian-vector product through attention needs the composite math kernel.
    """
    with sdpa_kernel(SDPBackend.MATH):
        yield
