"""Shared parts of the function-geometry experiments (Kubo et al. 2019): pairs, the tracked
measures, the thresholds of "nearly straight" and plotting helpers.

Thresholds, fixed from the definitions before any result was seen. Call a segment nearly
straight when it looks like a parabola ``g(t) = s t + a t (t - 1)`` whose bulge ``|a|`` is at
most 40% of its chord slope ``|s|``. Then ``g' - s = a (2t - 1)`` and

* relative gradient gap deviation = RMS(g' - s) / RMS(g') = (|a|/sqrt 3) / sqrt(s^2 + a^2/3)
  = 0.225 at |a| = 0.4 |s|: threshold **0.25**;
* relative sagitta = (|a| / 4) / std(g) = 0.1 |s| / std(g); between two random inputs
  |s| ~ sqrt(2) std(g) (difference of two draws), so 0.14: threshold **0.15**.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from noisereg._plotting import plt
from noisereg.data.images import Split
from noisereg.diagnostics.geometry import segment_measures
from noisereg.models.init import generator

STRAIGHT_RELATIVE_GGD = 0.25
STRAIGHT_RELATIVE_SAGITTA = 0.15

TRACKED: tuple[str, ...] = (
    "gradient_gap_deviation", "relative_gradient_gap_deviation", "gradient_deflection",
    "sagitta", "relative_sagitta", "kinks", "neuron_flips")
# The trained-network experiments measure train-train and test-test segments and plot these.
SPLITS = ("train", "test")
PLOTTED = ("relative_gradient_gap_deviation", "relative_sagitta", "gradient_gap_deviation",
           "gradient_deflection", "kinks", "neuron_flips")
LABELS = {
    "gradient_gap_deviation": "gradient gap deviation",
    "relative_gradient_gap_deviation": "relative gradient gap deviation",
    "gradient_deflection": "gradient deflection (slope TV / L)",
    "sagitta": "sagitta",
    "relative_sagitta": "relative sagitta",
    "kinks": "kinks per segment",
    "neuron_flips": "neuron flips per segment",
}


def pair_indices(n: int, pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``pairs`` pairs of distinct indices below ``n``, drawn with ``seed``."""
    if n < 2:
        raise ValueError(f"need at least 2 examples to draw pairs, got {n}")
    gen = generator(seed)
    first = torch.randint(n, (pairs,), generator=gen)
    second = (first + torch.randint(1, n, (pairs,), generator=gen)) % n  # never equal
    return first, second


def split_pairs(data: Split, pairs: int, seed: int) -> dict[str, tuple[torch.Tensor, ...]]:
    """For each of ``SPLITS``: (x_a, x_b, y_a, y_b) of ``pairs`` seeded pairs of distinct
    samples of that split (train-train and test-test segments)."""
    segments = {}
    for split in SPLITS:
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        first, second = pair_indices(len(x), pairs, 2 * seed + SPLITS.index(split))
        segments[split] = (x[first], x[second], y[first], y[second])
    return segments


def measure(model: torch.nn.Module, xa: torch.Tensor, xb: torch.Tensor, *, points: int,
            names: Sequence[str] = TRACKED) -> dict[str, float]:
    """Mean over pairs (and outputs) of each measure of ``names`` on the segments."""
    result = segment_measures(model, xa, xb, points=points, measures=list(names))
    return {name: stats["mean"] for name, stats in result.summary().items()}


def over_seeds(summary: dict) -> str:
    """'mean ± std over N seed(s)' for plot titles."""
    n = len(summary["seeds"])
    return f"mean ± std over {n} seed{'s' if n > 1 else ''}"


def error_plot(ax: plt.Axes, x: Sequence[float], values: np.ndarray, **style: object) -> None:
    """Mean over seeds (rows of ``values``) with a band of +- one std."""
    values = np.atleast_2d(values)
    mean, std = values.mean(0), values.std(0)
    (line,) = ax.plot(x, mean, **style)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
