"""geometry-init: function geometry between input pairs at initialization, against width and
depth (Kubo et al. 2019; measures as reconstructed in :mod:`noisereg.diagnostics.geometry`).

He-initialised ReLU MLPs (``depth`` hidden layers of ``width`` units, 10 logits) are measured on
random pairs of training images: the gradient gap deviation, gradient deflection, sagitta and
kinks along the segments, for every logit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from noisereg._plotting import plt, save
from noisereg._progress import bar
from noisereg._validate import check_choice, check_int, check_product
from noisereg.data.images import DATASETS, check_split, load_split
from noisereg.experiments._geometry import (
    LABELS,
    STRAIGHT_RELATIVE_GGD,
    STRAIGHT_RELATIVE_SAGITTA,
    TRACKED,
    error_plot,
    measure,
    over_seeds,
)
from noisereg.experiments.base import Claim, Experiment, Metrics, Summary, per_seed, seed_mean
from noisereg.models.mlp import MLP


@dataclass(frozen=True)
class Config:
    dataset: Literal["digits", "mnist5k"] = "mnist5k"
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    depths: tuple[int, ...] = (1, 2, 3, 4)
    pairs: int = 256
    points: int = 129

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        for name in ("widths", "depths"):
            values = getattr(self, name)
            if len(values) < 2 or list(values) != sorted(set(values)):
                raise ValueError(f"{name} must hold at least two increasing values")
            for value in values:
                check_int(name, value, low=1, high=16_384 if name == "widths" else 64)
        check_product("widths[-1]^2 * depths[-1]", self.widths[-1] ** 2 * self.depths[-1], 1e8,
                      "parameters of the largest network")
        check_int("pairs", self.pairs, low=2, high=10_000)
        # The 2 * pairs segment ends and one test image are drawn without replacement.
        check_split(self.dataset, 2 * self.pairs, 1, names="2 * pairs + 1")
        check_int("points", self.points, low=3, high=4_097)


def _key(name: str, depth: int) -> str:
    return f"{name}/depth{depth}"


def run(config: Config, seed: int) -> Metrics:
    data = load_split(config.dataset, 2 * config.pairs, 1, seed=seed)
    xa, xb = data.x_train[:config.pairs], data.x_train[config.pairs:]
    metrics: Metrics = {}
    cells = [(d, w) for d in config.depths for w in config.widths]
    for depth, width in bar(cells, desc="depth x width"):
        model = MLP(data.num_features, [width] * depth, 10, seed=seed)
        for name, value in measure(model, xa, xb, points=config.points).items():
            metrics.setdefault(_key(name, depth), []).append(value)
    for depth in config.depths:
        flips = np.asarray(metrics[_key("neuron_flips", depth)])
        metrics[_key("flips_per_neuron", depth)] = flips / (depth * np.asarray(config.widths))
    return metrics


def _grid(summary: Summary, name: str) -> np.ndarray:
    """``(depths, widths)`` seed means of measure ``name``."""
    return np.stack([seed_mean(summary, _key(name, d)) for d in summary["config"]["depths"]])


def claims(summary: Summary) -> list[Claim]:
    widths, depths = summary["config"]["widths"], summary["config"]["depths"]
    rel = _grid(summary, "relative_gradient_gap_deviation")
    flips = _grid(summary, "flips_per_neuron")
    width_ratio = rel[:, -1] / rel[:, 0]
    depth_ratio = rel[-1] / rel[0]
    return [
        Claim.compare(
            "ggd-does-not-shrink-with-width",
            f"research notes: the relative gradient gap deviation at init does not shrink with "
            f"width: width {widths[-1]} over width {widths[0]}, smallest over depths (a "
            f"1/sqrt(width) decay would give {np.sqrt(widths[0] / widths[-1]):.2f})",
            float(width_ratio.min()), ">=", 0.5),
        Claim.compare(
            "ggd-grows-with-depth",
            f"research notes: the relative gradient gap deviation grows with depth: depth "
            f"{depths[-1]} over depth {depths[0]}, smallest over widths",
            float(depth_ratio.min()), ">", 1.0),
        Claim.compare(
            "straight-at-init-ggd",
            "Kubo et al.: random initialization interpolates almost straight: relative gradient "
            "gap deviation, largest over widths and depths",
            float(rel.max()), "<=", STRAIGHT_RELATIVE_GGD),
        Claim.compare(
            "straight-at-init-sagitta",
            "Kubo et al.: random initialization interpolates almost straight: relative sagitta, "
            "largest over widths and depths",
            float(_grid(summary, "relative_sagitta").max()), "<=", STRAIGHT_RELATIVE_SAGITTA),
        Claim.compare(
            "regions-linear-in-neurons",
            f"Hanin & Rolnick: boundary crossings per segment grow linearly with the neurons: "
            f"neuron flips per neuron, width {widths[-1]} over width {widths[0]}, smallest over "
            f"depths",
            float((flips[:, -1] / flips[:, 0]).min()), ">=", 0.5),
    ]


def plot(summary: Summary, outdir: Path) -> list[str]:
    widths, depths = summary["config"]["widths"], summary["config"]["depths"]
    panels = [*TRACKED, "flips_per_neuron"]
    panels.remove("neuron_flips")
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.8))
    labels = {**LABELS, "flips_per_neuron": "neuron flips per neuron"}
    for ax, name in zip(axes.flat, panels):
        for i, depth in enumerate(depths):
            error_plot(ax, widths, per_seed(summary, _key(name, depth)), marker="o",
                       color=f"C{i}", label=f"depth {depth}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.set(xlabel="width", ylabel=labels[name], title=labels[name])
    for ax, threshold in ((axes.flat[1], STRAIGHT_RELATIVE_GGD),
                          (axes.flat[4], STRAIGHT_RELATIVE_SAGITTA)):
        ax.axhline(threshold, color="grey", linestyle=":", label="'nearly straight' threshold")
    axes.flat[1].legend(fontsize=8)
    axes.flat[-1].axis("off")
    fig.suptitle(f"Geometry along {summary['config']['pairs']} segments between "
                 f"{summary['config']['dataset']} images at He initialization "
                 f"({over_seeds(summary)})")
    return [save(fig, outdir, "geometry_vs_width.png")]


EXPERIMENT = Experiment(
    name="geometry-init",
    paper="Kubo et al. 2019",
    claim="At initialization the output of a ReLU network between two inputs is almost straight "
          "(low complexity); the research notes add that the gradient gap does not shrink with "
          "width and grows with depth.",
    config=Config,
    quick=Config(widths=(64, 256, 1024), depths=(1, 2, 4), pairs=64, points=65),
    full=Config(),
    run=run,
    claims=claims,
    plot=plot,
    seeds_quick=2,
    seeds_full=3,
    description=(
        "He-initialised ReLU MLPs (zero biases, 10 logits) on random pairs of distinct training "
        "images; every measure is averaged over the logits and the pairs (definitions: the "
        "library's reconstruction, the paper's text was not available). Thresholds of 'nearly "
        "straight' (relative GGD <= 0.25, relative sagitta <= 0.15) were derived from a parabola "
        "with a bulge of 40% of the chord slope before any run. Seen (quick preset): relative GGD "
        "0.4-0.75 and relative sagitta 0.3-0.7, so under these definitions initialization does "
        "not interpolate straight; the GGD does not shrink with width and grows ~1.5x from depth "
        "1 to 4, and flips per neuron are width independent. Kinks saturate at points - 1."),
)
