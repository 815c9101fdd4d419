"""One perturbation primitive: plan the noise of a step, move the planned parameters to
w + noise and back, bitwise. Used by :class:`~noisereg.PerturbedOptimizer` and by the
Monte-Carlo smoothed loss of :mod:`noisereg.diagnostics.smoothing`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

from noisereg.optim._noise import NoiseStream

Plan = Sequence[tuple[int, torch.Tensor, float]]  # (parameter index, parameter, noise std)


def plan_noise(params: Sequence[torch.Tensor], sigmas: Sequence[float],
               groups: Sequence[Sequence[int]] | None, step: int, stream: NoiseStream,
               layer_choice: Literal["random", "cyclic"] = "random",
               ) -> list[tuple[int, torch.Tensor, float]]:
    """(index, parameter, std) of every tensor perturbed at ``step``.

    Global noise (``groups=None``): every parameter that requires grad, std sigma_i. Layer-wise
    noise: one of the M groups of parameter indices, ``step mod M`` (cyclic) or drawn from
    ``stream`` (random), with std sqrt(M) sigma_i (Orvieto et al. 2023's convention: the
    expected sigma^2 term equals the global one). Parameters with sigma 0 are left out.
    """
    if groups is None:
        chosen, scale = [i for i, p in enumerate(params) if p.requires_grad], 1.0
    else:
        m = len(groups)
        if m == 0:
            return []
        j = step % m if layer_choice == "cyclic" else stream.choice(step, m)
        chosen, scale = list(groups[j]), math.sqrt(m)
    return [(i, params[i], scale * sigmas[i]) for i in chosen if sigmas[i] > 0]


def module_groups(names: Sequence[str]) -> list[list[int]]:
    """Indices of the parameters grouped by module: names that share the prefix before the
    last dot (``"0.weight"`` and ``"0.bias"``), in order of first appearance."""
    modules: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        modules.setdefault(name.rpartition(".")[0], []).append(i)
    return list(modules.values())


class Perturbation:
    """``apply(plan, stream, step)`` sets every planned parameter to w + N(0, std^2) noise of
    (step, index); ``restore()`` puts w back bitwise. ``armed`` says that the gradients being
    computed belong to the perturbation of ``step`` (the optimizer's pending step).

    Only the perturbed tensors are copied, once, into backup buffers reused across steps; the
    noise is drawn in place into contiguous parameters. The state lives in this object rather
    than in the optimizer so that wrappers that forward attribute reads to the optimizer
    (Lightning's ``LightningOptimizer``) act on the same perturbation.
    """

    def __init__(self) -> None:
        self._backups: dict[int, torch.Tensor] = {}
        self._saved: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.step: int | None = None
        self.armed = False

    @property
    def active(self) -> bool:
        """Whether the weights are perturbed now."""
        return self._saved is not None

    def apply(self, plan: Plan, stream: NoiseStream, step: int) -> None:
        if self.active:
            raise RuntimeError("the weights are already perturbed (perturb() or perturbed()): "
                               "restore() first")
        saved: list[tuple[torch.Tensor, torch.Tensor]] = []
        try:
            with torch.no_grad():
                for i, p, _ in plan:  # every backup is taken before any weight changes
                    saved.append((p, self._backup(i, p).copy_(p)))
                targets = [p if p.is_contiguous() else torch.empty(p.shape, dtype=p.dtype,
                                                                   device=p.device)
                           for _, p, _ in plan]
                stream.fill_([(t, i, std) for t, (i, _, std) in zip(targets, plan)], step)
                for (p, backup), target in zip(saved, targets):
                    # noise + w when the noise was drawn into p, else w + noise: the same floats
                    p.add_(backup if target is p else target)
        except BaseException:
            _copy_back(saved)
            raise
        self._saved, self.step = saved, step

    def restore(self) -> None:
        """Put the original weights back (nothing to do when not perturbed)."""
        if self._saved is not None:
            _copy_back(self._saved)
            self._saved = None

    def _backup(self, index: int, p: torch.Tensor) -> torch.Tensor:
        """A buffer for the original values of parameter ``index``, reused across steps."""
        buf = self._backups.get(index)
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype or buf.device != p.device:
            buf = self._backups[index] = torch.empty_like(p)
        return buf

    def __getstate__(self) -> dict[str, Any]:
        # the buffers are a cache unless they hold the weights of an active perturbation
        return {**self.__dict__, "_backups": self._backups if self.active else {}}


def _copy_back(saved: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for p, backup in saved:
            p.copy_(backup)
