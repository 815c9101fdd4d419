"""Shared parts of the function-geometry experiments (after Kubo et al. 2019): pairs of inputs,
how straight a network is between them under the normalizations a reader could mean, the bound
of "almost straight", and helpers for the metrics and the plots.

On the segment ``x(t) = (1 - t) x_a + t x_b`` of length ``L``, for each output ``o`` of the
network, ``g(t) = f_o(x(t))``, the rise ``r = g(1) - g(0)``, the gradient gap deviation
``D = RMS_t(g'(t) - r) / L`` and the sagitta ``S = max_t |g(t) - (1 - t) g(0) - t g(1)|`` (the
library's definitions, :mod:`noisereg.diagnostics.geometry`). Ratios are pooled over the ``P``
pairs as root mean squares (a ratio per pair blows up where ``f(x_a) ~ f(x_b)``), then averaged
over the outputs:

* ``chord``: ``RMS_p D / RMS_p (r / L)``, the gap relative to the chord slope. The paper's claim
  is tested with this one (chosen before any run): "interpolating almost straight" says that
  ``g`` stays close to its chord, which is relative to how much ``g`` changes along the chord;
  the ratio is scale free and does not depend on the input dimension.
* ``gradient``: ``RMS_p D / RMS ||grad f_o||`` (input gradients at both ends), the gap relative
  to the input-gradient norm. A directional derivative sees only the gradient's component along
  the segment, so this ratio shrinks with the input dimension even where ``g`` is curved:
  reported, not tested.
* ``cosine``: the mean over pairs of ``cos(grad f_o(x_a), grad f_o(x_b))``: 1 where ``f`` is
  affine around the segment; it also sees the directions off the segment: reported, not tested.
* ``sagitta``: ``RMS_p S / RMS_p r``, the largest distance to the chord relative to the rise.

The bound of "almost straight" (a tolerance fixed before any run, the one of the library's first
version): a parabola ``g(t) = r t + a t (t - 1)`` whose sagitta ``|a| / 4`` is at most a tenth of
its rise, ``|a| <= 0.4 |r|``. Then ``g' - r = a (2t - 1)``, ``RMS(g' - r) = |a| / sqrt(3)``: a
chord ratio of at most ``0.4 / sqrt(3) = 0.231`` (:data:`STRAIGHT_CHORD`) and a sagitta ratio of
at most 0.1. (On a grid of ``T`` points the RMS of ``2t - 1`` is ``sqrt((T + 1) / (3 (T - 1)))``,
within 2% of ``1 / sqrt(3)`` for ``T >= 65``.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from noisereg._seeding import torch_generator
from noisereg._validate import check_choice, check_int
from noisereg.data.images import DATASETS, SIZES, Split, check_split
from noisereg.diagnostics.geometry import segment_measures, segment_profiles
from noisereg.lab._plotting import plt
from noisereg.lab.experiments.base import seed_values as seed_values  # re-exported

STRAIGHT_CHORD = 0.4 / math.sqrt(3)
STRAIGHT_SAGITTA = 0.1
STRAIGHT_BASIS = ("'almost straight' = a sagitta of at most a tenth of the rise; for a parabola "
                  "g(t) = r t + a t (t - 1) that is |a| <= 0.4 |r|, where RMS(g' - r) / |r| = "
                  "|a| / (sqrt(3) |r|) <= 0.4 / sqrt(3) (a tolerance fixed before any run)")

PAIRINGS: tuple[str, ...] = ("random", "class", "neighbour")
PAIRING_LABELS = {"random": "random pairs", "class": "pairs within a class",
                  "neighbour": "nearest neighbours"}
# Images per dataset (see noisereg.data.images), for the limits of the config fields.
DATASET_SIZES = SIZES  # images per dataset, known without loading it


def check_segment_data(dataset: str, n_train: int, n_test: int, pairs: int, points: int) -> None:
    """The data fields of an experiment that measures ``pairs`` train-train and test-test
    segments of ``points`` points each."""
    check_choice("dataset", dataset, DATASETS)
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        check_int(name, value, low=2, high=10_000)  # a segment joins two distinct samples
    check_split(dataset, n_train, n_test)
    check_int("pairs", pairs, low=1, high=min(n_train, n_test, 10_000))
    check_int("points", points, low=3, high=4_097)

READINGS: tuple[str, ...] = ("chord", "gradient", "cosine", "sagitta")
PATTERNS: tuple[str, ...] = ("kinks", "neuron_flips")
MEASURED: tuple[str, ...] = (*READINGS, "gap", "deflection", *PATTERNS)
LABELS = {
    "chord": "gradient gap deviation / chord slope",
    "gradient": "gradient gap deviation / input-gradient norm",
    "cosine": "cosine between endpoint gradients",
    "sagitta": "sagitta / rise",
    "gap": "gradient gap deviation (per unit length)",
    "deflection": "gradient deflection (slope TV / L)",
    "kinks": "kinks per segment",
    "neuron_flips": "neuron flips per segment",
}
BOUNDS = {"chord": STRAIGHT_CHORD, "sagitta": STRAIGHT_SAGITTA}
# Train-train and test-test segments in the trained-network experiments.
SPLITS = ("train", "test")


def draw_pairs(x: torch.Tensor, y: torch.Tensor, count: int, seed: int,
               pairing: str = "random", *, stream: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` pairs of indices into ``x``: distinct anchors drawn from
    ``torch_generator(seed, "pairs", stream)`` among the samples that have a classmate, each
    with a partner that is

    * ``random``: any other sample;
    * ``class``: another sample of the anchor's class (``y``);
    * ``neighbour``: the nearest other sample (Euclidean) at a positive distance.

    The anchors depend only on (``seed``, ``stream``) and the labels, so the pairings share
    them.
    """
    check_choice("pairing", pairing, PAIRINGS)
    counts = torch.bincount(y)
    eligible = (counts[y] >= 2).nonzero()[:, 0]
    check_int("pairs", count, low=1, high=len(eligible))
    gen = torch_generator(seed, "pairs", stream)
    anchors = eligible[torch.randperm(len(eligible), generator=gen)[:count]]
    if pairing == "random":
        return anchors, (anchors + torch.randint(1, len(x), (count,), generator=gen)) % len(x)
    if pairing == "class":
        draws = torch.rand(count, generator=gen, dtype=torch.float64)
        partners = []
        for anchor, u in zip(anchors.tolist(), draws.tolist()):
            mates = (y == y[anchor]).nonzero()[:, 0]
            mates = mates[mates != anchor]
            partners.append(mates[int(u * len(mates))])
        return anchors, torch.stack(partners)
    distances = torch.cdist(x[anchors].flatten(1).double(), x.flatten(1).double(),
                            compute_mode="donot_use_mm_for_euclid_dist")  # exact zeros
    distances[distances == 0] = math.inf  # the anchor itself and exact copies: no segment
    return anchors, distances.argmin(1)


def split_pairs(data: Split, pairs: int, seed: int) -> dict[str, tuple[torch.Tensor, ...]]:
    """For each of ``SPLITS``: (x_a, x_b, y_a, y_b) of ``pairs`` random pairs of distinct
    samples of that split, drawn with ``seed`` (train-train and test-test segments)."""
    segments = {}
    for split in SPLITS:
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        first, second = draw_pairs(x, y, pairs, seed, stream=SPLITS.index(split))
        segments[split] = (x[first], x[second], y[first], y[second])
    return segments


def _rms(values: torch.Tensor) -> torch.Tensor:
    """Root mean square over the pairs (first axis), per output."""
    return values.double().pow(2).mean(0).sqrt()


def _pooled_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> float:
    """Mean over outputs of ``numerator / denominator``; 0 / 0 is 0 (a constant output is
    straight), ``x / 0`` is infinite (stored as null: the claim fails and says so)."""
    ratio = torch.where(numerator == 0, torch.zeros_like(numerator), numerator / denominator)
    return float(ratio.mean())


def straightness(model: nn.Module, xa: torch.Tensor, xb: torch.Tensor, *, points: int,
                 patterns: bool = True) -> dict[str, float]:
    """Every measure of :data:`MEASURED` on the segments ``xa[p] -> xb[p]`` (see the module
    docstring): the readings pooled over pairs, the others averaged over pairs and outputs.
    ``patterns=False`` leaves out kinks and neuron flips (for models without ReLU modules)."""
    names = ["gradient_gap_deviation", "gradient_deflection", "sagitta",
             *(PATTERNS if patterns else ())]
    result = segment_measures(model, xa, xb, points=points, measures=names)
    profiles = result.profiles
    rise = profiles.g[:, -1] - profiles.g[:, 0]
    gap = result.values["gradient_gap_deviation"]
    ends = segment_profiles(model, xa, xb, points=3, input_gradients=True, activations=())
    grad_a, grad_b = (ends.input_gradients[:, k].flatten(2).double() for k in (0, -1))
    grad_rms = torch.cat([grad_a, grad_b]).pow(2).sum(-1).mean(0).sqrt()
    found = {
        "chord": _pooled_ratio(_rms(gap), _rms(rise / profiles.lengths[:, None])),
        "gradient": _pooled_ratio(_rms(gap), grad_rms),
        "cosine": float(F.cosine_similarity(grad_a, grad_b, dim=-1).mean()),
        "sagitta": _pooled_ratio(_rms(result.values["sagitta"]), _rms(rise)),
        "gap": float(gap.mean()),
        "deflection": float(result.per_pair("gradient_deflection").mean()),
    }
    for name in PATTERNS if patterns else ():
        found[name] = float(result.per_pair(name).mean())
    return found


def log_slope(x: Sequence[float], y: np.ndarray) -> np.ndarray:
    """Least-squares exponent ``b`` of ``y ~ x^b`` along the last axis of ``y`` (NaN where a
    value is not positive)."""
    lx = np.log(np.asarray(x, dtype=float))
    lx = lx - lx.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(np.where(y > 0, y, np.nan))
    return (ly * lx).sum(-1) / (lx**2).sum()


def readings_note(values: dict[str, np.ndarray], where: str) -> str:
    """'other readings (not tested): ...' with the range of each seed-mean reading of
    ``values`` (name -> per-seed array, seeds first) over ``where``."""
    parts = []
    for name in ("gradient", "cosine", "sagitta"):
        mean = np.atleast_1d(values[name].mean(0))
        parts.append(f"{LABELS[name]} {np.nanmin(mean):.3g}–{np.nanmax(mean):.3g}")
    return f"other readings (not tested; seed means over {where}): " + "; ".join(parts)


def over_seeds(summary: dict[str, Any]) -> str:
    """'mean ± std over N seed(s)' for plot titles."""
    n = len(summary["seeds"])
    return f"mean ± std over {n} seed{'s' if n > 1 else ''}"


def error_plot(ax: plt.Axes, x: Sequence[float], values: np.ndarray, **style: object) -> None:
    """Mean over seeds (rows of ``values``) with a band of +- one std."""
    values = np.atleast_2d(values)
    mean, std = values.mean(0), values.std(0)
    (line,) = ax.plot(x, mean, **style)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)


def mark_bound(ax: plt.Axes, name: str) -> None:
    """The 'almost straight' bound of reading ``name``, if it has one."""
    if name in BOUNDS:
        ax.axhline(BOUNDS[name], color="grey", linestyle=":", label="'almost straight' bound")
