"""Activation patterns of piecewise-linear networks: every ReLU call of ``f`` (modules and
functional calls alike, seen through a ``TorchFunctionMode``) or the outputs of given modules
(forward hooks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

Function = Callable[[torch.Tensor], torch.Tensor]
# What ``nn.ReLU``, ``F.relu(x)``, ``F.relu(x, inplace=True)``, ``torch.relu`` and
# ``x.relu()`` reach first (the mode sees the outermost call only).
_RELUS = frozenset({F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu,
                    torch.Tensor.relu_})
HOW = ("ReLU activations in f (nn.ReLU, F.relu, torch.relu or Tensor.relu calls), or "
       "activations= naming the modules whose output signs form the pattern")


def watched_modules(activations: Sequence[nn.Module] | None) -> list[nn.Module] | None:
    """``None``: every ReLU call of ``f``; otherwise the given modules (``()``: none)."""
    if activations is None:
        return None
    if isinstance(activations, nn.Module) or not all(isinstance(m, nn.Module)
                                                    for m in activations):
        raise TypeError("activations must be a sequence of torch.nn.Module (or None)")
    return list(activations)


class _ReluCalls(TorchFunctionMode):
    def __init__(self, record: Callable[[torch.Tensor], None]) -> None:
        super().__init__()
        self.record = record

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in _RELUS:
            self.record(out)
        return out


class PatternRecorder:
    """Context manager: while active, every watched activation output (see
    :func:`watched_modules`) with ``rows`` rows reduces its sign pattern ``output > 0``
    (``(rows, neurons)`` booleans) with ``reduce``; the reductions are summed over calls, so
    no full pattern is ever kept. ``rows`` is set by :meth:`recording` for each pass; a ReLU of
    another shape (e.g. of a weight) is not part of the points' pattern and is skipped.

    For ReLU, ``output > 0`` iff ``input > 0``, which also holds for in-place ReLUs.
    """

    def __init__(self, modules: Sequence[nn.Module] | None,
                 reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.modules = None if modules is None else list(modules)
        self.reduce = reduce
        self.neurons = 0
        self.rows = 0
        self._total: torch.Tensor | None = None
        self._handles: list[Any] = []
        self._mode: _ReluCalls | None = None

    def _record(self, output: torch.Tensor) -> None:
        if output.dim() == 0 or output.shape[0] != self.rows:
            return
        signs = (output > 0).reshape(output.shape[0], -1)
        reduced = self.reduce(signs)
        self._total = reduced if self._total is None else self._total + reduced
        self.neurons += signs.shape[1]

    def recording(self, rows: int) -> PatternRecorder:
        """Record a pass over a batch of ``rows`` points: ``with recorder.recording(n): f(x)``."""
        self.rows = rows
        return self

    def __enter__(self) -> PatternRecorder:
        self._total, self.neurons = None, 0
        if self.modules is None:
            self._mode = _ReluCalls(self._record)
            self._mode.__enter__()
        else:
            self._handles = [m.register_forward_hook(lambda m, i, out: self._record(out))
                             for m in self.modules]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._mode is not None:
            self._mode.__exit__(*exc)
            self._mode = None
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def total(self) -> torch.Tensor | None:
        """The summed reductions of the last recorded pass; None when nothing is watched
        (``activations=()``) or no ReLU ran in ``f``."""
        if self.modules is not None and not self.modules:
            return None
        if self._total is None and self.modules:
            raise ValueError("activations: none of the given modules ran during the forward pass")
        return self._total
