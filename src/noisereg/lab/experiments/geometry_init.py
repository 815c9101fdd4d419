"""geometry-init: how straight a ReLU network is between two inputs at initialization, against
width and depth (Kubo et al. 2019; measures as reconstructed in
:mod:`noisereg.diagnostics.geometry`), and the linear regions a line crosses (Hanin & Rolnick
2019).

He-initialised ReLU MLPs (``depth`` hidden layers of ``width`` units, 10 logits) are measured on
pairs of training images drawn three ways from the same anchors (random partner, partner of the
same class, nearest neighbour): the gradient gap deviation relative to the chord slope, to the
input-gradient norm, the cosine between endpoint gradients, the sagitta over the rise, the
gradient deflection, kinks and neuron flips, for every logit (see :mod:`._geometry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from noisereg._validate import check_choice, check_int, check_product
from noisereg.data.images import load_split
from noisereg.lab._plotting import plt, save
from noisereg.lab._progress import bar
from noisereg.lab.experiments._geometry import (
    DATASET_SIZES,
    LABELS,
    MEASURED,
    PAIRING_LABELS,
    PAIRINGS,
    READINGS,
    STRAIGHT_BASIS,
    STRAIGHT_CHORD,
    draw_pairs,
    error_plot,
    log_slope,
    mark_bound,
    over_seeds,
    readings_note,
    seed_values,
    straightness,
)
from noisereg.lab.experiments.base import Experiment, Metrics, Summary
from noisereg.lab.experiments.claims import Claim, ClaimSpec
from noisereg.models.mlp import MLP


@dataclass(frozen=True)
class Config:
    dataset: Literal["digits", "mnist5k"] = "mnist5k"
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    depths: tuple[int, ...] = (1, 2, 3, 4)
    pool: int = 4000  # training images the pairs are drawn from (and neighbours searched in)
    pairs: int = 128  # per pairing
    points: int = 129

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, tuple(DATASET_SIZES))
        for name in ("widths", "depths"):
            values = getattr(self, name)
            if len(values) < 2 or list(values) != sorted(set(values)):
                raise ValueError(f"{name} must hold at least two increasing values")
            for value in values:
                check_int(name, value, low=1, high=16_384 if name == "widths" else 64)
        check_product("widths[-1]^2 * depths[-1]", self.widths[-1] ** 2 * self.depths[-1], 1e8,
                      "parameters of the largest network")
        check_int("pool", self.pool, low=2, high=DATASET_SIZES[self.dataset] - 1)
        check_int("pairs", self.pairs, low=1, high=min(self.pool, 10_000))
        check_int("points", self.points, low=3, high=4_097)


def run(config: Config, seed: int) -> Metrics:
    data = load_split(config.dataset, config.pool, 1, seed=seed)
    x, y = data.x_train, data.y_train
    pairs = {p: draw_pairs(x, y, config.pairs, seed, p) for p in PAIRINGS}
    metrics: Metrics = {p: {name: [[] for _ in config.depths] for name in MEASURED}
                        for p in PAIRINGS}
    metrics["segment_length"] = {p: float((x[b] - x[a]).norm(dim=1).mean())
                                 for p, (a, b) in pairs.items()}
    cells = [(i, d, w) for i, d in enumerate(config.depths) for w in config.widths]
    for i, depth, width in bar(cells, desc="depth x width"):
        model = MLP(data.num_features, [width] * depth, 10, seed=seed)
        for pairing, (a, b) in pairs.items():
            for name, value in straightness(model, x[a], x[b], points=config.points).items():
                metrics[pairing][name][i].append(value)
    return metrics


STRAIGHT = ClaimSpec(
    "straight-at-init", "paper",
    "Kubo et al. 2019: a randomly initialized ReLU network interpolates almost straight between "
    "pairs of input samples: the gradient gap deviation relative to the chord slope, on random "
    "pairs of training images, largest over widths and depths, is below the bound",
    "<", STRAIGHT_CHORD,
    STRAIGHT_BASIS + "; relative to the chord slope because straightness is the distance to the "
    "chord (scale free, independent of the input dimension), on random pairs as in 'each pair "
    "of input samples'; both chosen before any run")
WITHIN_CLASS = ClaimSpec(
    "straight-at-init-within-class", "exploratory",
    "Does a randomly initialized ReLU network interpolate almost straight between two images of "
    "the same class? The gradient gap deviation relative to the chord slope on within-class "
    "pairs, largest over widths and depths, below the bound",
    "<", STRAIGHT_CHORD, "the bound of straight-at-init: " + STRAIGHT_BASIS)
NEIGHBOURS = ClaimSpec(
    "straight-at-init-neighbours", "exploratory",
    "Does a randomly initialized ReLU network interpolate almost straight between nearest "
    "neighbours? The gradient gap deviation relative to the chord slope between each anchor and "
    "its nearest training image, largest over widths and depths, below the bound",
    "<", STRAIGHT_CHORD, "the bound of straight-at-init: " + STRAIGHT_BASIS)
WIDTH = ClaimSpec(
    "gap-persists-with-width", "exploratory",
    "Does the gradient gap at initialization persist as the width grows? The exponent b of the "
    "chord-relative gradient gap deviation ~ width^b (least squares over the widths, random "
    "pairs), smallest over depths, above -0.25",
    ">", -0.25, "midway between no change (b = 0) and the 1/sqrt(width) decay (b = -1/2) that "
    "averaging over more units would give")
DEPTH = ClaimSpec(
    "gap-grows-with-depth", "exploratory",
    "Does the gradient gap at initialization grow with depth? The chord-relative gradient gap "
    "deviation at the largest depth over the one at the smallest depth (random pairs), smallest "
    "over widths, above 1",
    ">", 1.0, "the sign of the change: a ratio of 1 is no change")
REGIONS = ClaimSpec(
    "regions-linear-in-neurons", "paper",
    "Hanin & Rolnick 2019: at initialization the number of linear regions a line crosses grows "
    "linearly with the number of neurons: the exponent b of neuron flips per segment ~ width^b "
    "(depth fixed, random pairs; least squares over the widths) is within 0.25 of 1, measured "
    "as |b - 1|, largest over depths",
    "<", 0.25, "linear growth is b = 1; a tolerance of 0.25, half the way to square-root "
    "growth (b = 1/2) or to b = 3/2")


def _cells(summary: Summary, pairing: str, name: str) -> np.ndarray:
    """``(seeds, depths, widths)`` values of measure ``name`` on ``pairing``."""
    return seed_values(summary, pairing, name)


def _worst(summary: Summary, pairing: str) -> np.ndarray:
    """Per seed: the largest chord-relative gap over the widths and depths."""
    return _cells(summary, pairing, "chord").max(axis=(1, 2))


def claims(summary: Summary) -> list[Claim]:
    widths = summary["config"]["widths"]
    chord = _cells(summary, "random", "chord")
    readings = {name: _cells(summary, "random", name) for name in READINGS}
    flips = log_slope(widths, _cells(summary, "random", "neuron_flips"))
    return [
        STRAIGHT.decide(_worst(summary, "random"),
                        note=readings_note(readings, "widths and depths")),
        WITHIN_CLASS.decide(_worst(summary, "class")),
        NEIGHBOURS.decide(_worst(summary, "neighbour")),
        WIDTH.decide(log_slope(widths, chord).min(axis=1)),
        DEPTH.decide((chord[:, -1] / chord[:, 0]).min(axis=1)),
        REGIONS.decide(np.abs(flips - 1).max(axis=1)),
    ]


def _against_width(ax: plt.Axes, summary: Summary, values: np.ndarray, label: str) -> None:
    """One line per depth of ``values`` ``(seeds, depths, widths)`` against the width."""
    widths = summary["config"]["widths"]
    for i, depth in enumerate(summary["config"]["depths"]):
        error_plot(ax, widths, values[:, i], marker="o", color=f"C{i}", label=f"depth {depth}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set(xlabel="width", ylabel=label)


def _plot_readings(summary: Summary, outdir: Path) -> str:
    fig, axes = plt.subplots(len(PAIRINGS), len(READINGS), figsize=(16, 10), squeeze=False)
    for row, pairing in zip(axes, PAIRINGS):
        length = summary["runs"][0]["metrics"]["segment_length"][pairing]
        for ax, name in zip(row, READINGS):
            _against_width(ax, summary, _cells(summary, pairing, name), LABELS[name])
            mark_bound(ax, name)
            ax.set_title(f"{PAIRING_LABELS[pairing]} (mean L {length:.3g})", fontsize=9)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"How straight at He initialization, {summary['config']['pairs']} pairs of "
                 f"{summary['config']['dataset']} images per pairing ({over_seeds(summary)}); "
                 "the paper's claim is tested with the chord slope on random pairs")
    return save(fig, outdir, "straightness_by_pairing.png")


def _plot_geometry(summary: Summary, outdir: Path) -> str:
    depths = np.asarray(summary["config"]["depths"])[:, None]
    widths = np.asarray(summary["config"]["widths"])
    panels = {name: (_cells(summary, "random", name), LABELS[name])
              for name in ("gap", "deflection", "kinks")}
    panels["flips_per_neuron"] = (_cells(summary, "random", "neuron_flips") / (depths * widths),
                                  "neuron flips per neuron")
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 3.8))
    for ax, (values, label) in zip(axes, panels.values()):
        _against_width(ax, summary, values, label)
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Random pairs at He initialization ({over_seeds(summary)})")
    return save(fig, outdir, "geometry_vs_width.png")


def plot(summary: Summary, outdir: Path) -> list[str]:
    return [_plot_readings(summary, outdir), _plot_geometry(summary, outdir)]


EXPERIMENT = Experiment(
    name="geometry-init",
    paper="Kubo et al. 2019; Hanin & Rolnick 2019",
    claim="At initialization a ReLU network interpolates almost straight between input samples "
          "(Kubo et al. 2019; paper); this library asks the same for pairs within a class and "
          "nearest neighbours and how the gradient gap changes with width and depth "
          "(exploratory); the number of linear regions a line crosses grows linearly with the "
          "neurons (Hanin & Rolnick 2019; paper).",
    config=Config,
    quick=Config(widths=(64, 256, 1024), depths=(1, 2, 4), pool=1000, pairs=48, points=65),
    full=Config(),
    run=run,
    claim_specs=(STRAIGHT, WITHIN_CLASS, NEIGHBOURS, WIDTH, DEPTH, REGIONS),
    claims=claims,
    plot=plot,
    description=(
        "He-initialised ReLU MLPs (zero biases, 10 logits) on pairs of distinct training images "
        "drawn from a pool: the same random anchors, each with a random partner, a partner of "
        "its class and its nearest neighbour. Every measure is taken per logit and pooled over "
        "the pairs (definitions: the library's reconstruction; only the paper's abstract was "
        "available). The paper's claim is tested, as chosen before any run, with the gradient "
        "gap deviation relative to the chord slope on random pairs ('each pair of input "
        "samples'), against the bound of 'almost straight' derived from a parabola whose "
        "sagitta is a tenth of its rise: straightness is the distance of the output to its "
        "chord relative to its change along the chord. The same gap relative to the "
        "input-gradient norm (which shrinks with the input dimension, since a directional "
        "derivative sees one component of the gradient), the cosine between the endpoint "
        "gradients (which also sees directions off the segment) and the sagitta over the rise "
        "are reported in the plots and the claim's note. Neuron flips between grid points are "
        "a lower bound on the boundary crossings (exact when no neuron flips twice between two "
        "points); Hanin & Rolnick's theorem assumes random biases, these nets start with zero "
        "biases. Kinks count at most points - 1 per segment, so they saturate for wide nets. "
        "The quick preset uses 3 widths, 3 depths, "
        "48 pairs per pairing and 65 points to stay cheap."),
    version=2,  # the one seed derivation (issue 12) draws other numbers
)
