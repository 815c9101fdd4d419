"""Shared by the noise-injection experiments (Orvieto et al. 2023): training loops for tiny
models, running averages, relative distances and the sanity claim that no run diverged."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from noisereg.dln import relative_error
from noisereg.lab._plotting import plt
from noisereg.lab._progress import bar
from noisereg.lab.experiments.claims import ClaimSpec

PAPER = "Orvieto et al. 2023"

COMPLETE = ClaimSpec(
    "runs-complete", "sanity",
    "every run took all its steps with a finite loss (none diverged): the smallest share of "
    "completed steps over the runs of a seed",
    ">=", 1.0, "a diverged run has no iterate or average to compare", rule="worst")


def squared_closure(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                    y: torch.Tensor) -> Callable[[], torch.Tensor]:
    """zero_grad, L = ||y - model(x)||^2 / (2n) (summed over outputs), backward; returns L."""
    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (model(x) - y).pow(2).sum() / (2 * x.shape[0])
        loss.backward()
        return loss
    return closure


def train(opt: torch.optim.Optimizer, closure: Callable[[], torch.Tensor], steps: int,
          record: Callable[[int], None] | None = None, *, desc: str = "PGD") -> int:
    """``steps`` optimizer steps, ``record(step)`` after each; stops early (and returns the number
    of completed steps) when the loss at the perturbed point is not finite."""
    for step in bar(range(steps), desc=desc):
        try:
            opt.step(closure)
        except FloatingPointError:
            return step
        if record is not None:
            record(step)
    return steps


def checkpoints(steps: int, count: int = 40) -> list[int]:
    """Step counts for curves: ``count`` log-spaced in [1, steps] and ``count`` evenly spaced
    over the second half (where the averages run)."""
    spaced = np.concatenate([np.geomspace(1, steps, count),
                             np.linspace(steps // 2 + 1, steps, count)])
    return sorted({int(s) for s in spaced})


class RunningAverage:
    """Averages ``value()`` over the steps >= ``start``. At the checkpoints (step counts) it
    records the relative distance of the current value to ``references[0]`` and, once the
    average has begun, of the average to every reference (convergence curves)."""

    def __init__(self, value: Callable[[], np.ndarray], start: int,
                 references: list[np.ndarray], at: list[int]) -> None:
        self.value, self.start, self.references = value, start, references
        self.at = set(at)
        self.total: np.ndarray | None = None
        self.count = 0
        self.iterate_steps: list[int] = []
        self.iterate_curve: list[float] = []
        self.average_steps: list[int] = []
        self.average_curves: list[list[float]] = [[] for _ in references]

    def __call__(self, step: int) -> None:
        checkpoint = step + 1 in self.at
        if step < self.start and not checkpoint:
            return
        current = self.value()
        if checkpoint:
            self.iterate_steps.append(step + 1)
            self.iterate_curve.append(relative_error(current, self.references[0]))
        if step >= self.start:
            self.total = current.copy() if self.total is None else self.total + current
            self.count += 1
            if checkpoint:
                self.average_steps.append(step + 1)
                for curve, ref in zip(self.average_curves, self.references):
                    curve.append(relative_error(self.mean, ref))

    @property
    def mean(self) -> np.ndarray:
        if self.total is None:
            raise RuntimeError("no step was averaged (the run stopped before the average began)")
        return self.total / self.count

    def metrics(self) -> dict[str, object]:
        """Errors of the average to every reference, the ratio of the first error to the best
        of the others (the claim that the first reference is the right one), and the curves."""
        errors = [relative_error(self.mean, ref) for ref in self.references]
        return {"errors": errors, "ratio": errors[0] / min(errors[1:]),
                "iterate_steps": self.iterate_steps, "iterate_curve": self.iterate_curve,
                "average_steps": self.average_steps, "average_curves": self.average_curves}


def convergence_figure(run: dict, labels: Sequence[str], *, ylabel: str, title: str,
                       tolerance: float = 0.02) -> tuple[plt.Figure, plt.Axes]:
    """The curves of :meth:`RunningAverage.metrics` against the PGD step: last iterate and
    running average to each reference (``labels``, the first the claimed solution), with the
    claim's tolerance; the caller adds its own lines, the legend, and saves."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.loglog(run["iterate_steps"], run["iterate_curve"], color="0.6", lw=0.8,
              label=f"last iterate → {labels[0]}")
    for j, (label, curve) in enumerate(zip(labels, run["average_curves"], strict=True)):
        ax.loglog(run["average_steps"], curve, color=f"C{j}",
                  label=f"average (2nd half) → {label}")
    ax.axhline(tolerance, color="k", lw=0.6, ls=":", label=f"{tolerance:.0%} (claim)")
    ax.set(xlabel="PGD step", ylabel=ylabel, title=title)
    return fig, ax
