"""Activation patterns of piecewise-linear networks, recorded by forward hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

PIECEWISE_LINEAR = (nn.ReLU,)
Function = Callable[[torch.Tensor], torch.Tensor]


def activation_modules(f: Callable[..., Any],
                       activations: Sequence[nn.Module] | None) -> list[nn.Module]:
    """The modules whose output signs make the activation pattern.

    ``None`` means every :class:`torch.nn.ReLU` inside ``f`` when ``f`` is a module (ReLUs
    applied through ``torch.nn.functional`` are invisible to hooks), else none.
    """
    if activations is None:
        if not isinstance(f, nn.Module):
            return []
        return [m for m in f.modules() if isinstance(m, PIECEWISE_LINEAR)]
    if isinstance(activations, nn.Module) or not all(isinstance(m, nn.Module)
                                                    for m in activations):
        raise TypeError("activations must be a sequence of torch.nn.Module (or None)")
    return list(activations)


class PatternRecorder:
    """Context manager: while active, every call of the watched modules reduces its sign
    pattern ``output > 0`` (``(examples, neurons)`` booleans) with ``reduce``; the reductions
    are summed over calls, so no full pattern is ever kept.

    For ReLU, ``output > 0`` iff ``input > 0``, which also holds for in-place ReLUs.
    """

    def __init__(self, modules: Sequence[nn.Module],
                 reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.modules = list(modules)
        self.reduce = reduce
        self.neurons = 0
        self._total: torch.Tensor | None = None
        self._handles: list[Any] = []

    def _hook(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        signs = (output > 0).reshape(output.shape[0], -1)
        reduced = self.reduce(signs)
        self._total = reduced if self._total is None else self._total + reduced
        self.neurons += signs.shape[1]

    def __enter__(self) -> PatternRecorder:
        self._total, self.neurons = None, 0
        self._handles = [m.register_forward_hook(self._hook) for m in self.modules]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def total(self) -> torch.Tensor | None:
        """The summed reductions of the last recorded call, or None without watched modules."""
        if not self.modules:
            return None
        if self._total is None:
            raise ValueError("activations: none of the given modules ran during the forward pass")
        return self._total
