"""pegr-real: GD, PEGR and GR on real images, with and without label flips (Meng, Cao, Zou 2023
motivate PEGR by learning signal rather than memorizing noise).

A one-hidden-layer ReLU MLP trains by full-batch GD on ``L_S + lambda * P`` (cross-entropy) with
the ghost backend of :mod:`noisereg.gradreg`; a fraction of the training labels is replaced by
a uniformly drawn other class. Measured: clean test accuracy, training accuracy on the given
labels, and the fraction of flipped examples fitted to their wrong label (memorization).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from noisereg._plotting import plt, save
from noisereg._threads import one_thread
from noisereg._validate import (
    check_choice,
    check_fraction,
    check_int,
    check_product,
    check_scale,
)
from noisereg.data.images import DATASETS, check_split, load_split
from noisereg.experiments._signal_noise_training import record_steps
from noisereg.experiments.base import Claim, Experiment, Metrics, Summary, seed_mean
from noisereg.gradreg import regularized_loss
from noisereg.models.mlp import MLP

METHODS = ("gd", "pegr", "gr")
LABELS = {"gd": "GD", "pegr": "PEGR", "gr": "GR"}


@dataclass(frozen=True)
class Config:
    dataset: Literal["digits", "mnist5k"] = "digits"
    n_train: int = 600
    n_test: int = 1000
    width: int = 256
    lr: float = 0.5
    steps: int = 1000
    flip_probs: tuple[float, ...] = (0.0, 0.3)
    lam_pegr: float = 0.05  # lambda of PEGR, fixed before any run
    lam_gr: float = 0.5  # lambda of GR: 10x PEGR's, as the signal-noise model suggests
    records: int = 11

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_int("n_train", self.n_train, low=10, high=10_000)
        check_int("n_test", self.n_test, low=1, high=10_000)
        check_split(self.dataset, self.n_train, self.n_test)
        check_int("width", self.width, low=1, high=100_000)
        check_product("784 * width", 784 * self.width, 1e8, "parameters of the network")
        check_scale("lr", self.lr, high=10.0)
        check_int("steps", self.steps, low=1, high=10**6)
        if not self.flip_probs:
            raise ValueError("flip_probs must name at least one flip probability")
        for p in self.flip_probs:
            check_fraction("flip_probs", p, open_right=True)
        check_scale("lam_pegr", self.lam_pegr, high=1e3)
        check_scale("lam_gr", self.lam_gr, high=1e3)
        check_int("records", self.records, low=2, high=10_000)


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs, targets, reduction="none")


def flip_labels(y: torch.Tensor, prob: float, classes: int,
                rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each label with probability ``prob`` by a uniformly drawn other class."""
    flipped = torch.from_numpy(rng.random(len(y)) < prob)
    shift = torch.from_numpy(rng.integers(1, classes, len(y)))
    return torch.where(flipped, (y + shift) % classes, y), flipped


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def run(config: Config, seed: int) -> Metrics:
    split = load_split(config.dataset, config.n_train, config.n_test, seed=seed)
    rng = np.random.default_rng(seed)
    at = set(record_steps(config.steps, config.records))
    lams = {"gd": 0.0, "pegr": config.lam_pegr, "gr": config.lam_gr}
    metrics: Metrics = {"step": sorted(at)}
    for k, prob in enumerate(config.flip_probs):
        y, flipped = flip_labels(split.y_train, prob, split.num_classes, rng)
        for method in METHODS:
            model = MLP(split.num_features, [config.width], split.num_classes, seed=seed)
            opt = torch.optim.SGD(model.parameters(), lr=config.lr)
            curve = []
            with one_thread():
                for t in range(config.steps + 1):
                    if t in at:
                        curve.append(_accuracy(model, split.x_test, split.y_test))
                    if t == config.steps:
                        break
                    opt.zero_grad()
                    regularized_loss(model, cross_entropy, split.x_train, y, lam=lams[method],
                                     penalty="gr" if method == "gr" else "pegr").backward()
                    opt.step()
            with torch.no_grad():
                fitted = model(split.x_train).argmax(1) == y
            key = f"{method}_{k}"
            metrics[f"{key}_test_accuracy"] = curve
            metrics[f"{key}_final_test_accuracy"] = curve[-1]
            metrics[f"{key}_train_accuracy"] = float(fitted.double().mean())
            metrics[f"{key}_memorized"] = (float(fitted[flipped].double().mean())
                                           if flipped.any() else float("nan"))
    return metrics


def claims(summary: Summary) -> list[Claim]:
    cfg = summary["config"]
    found = []
    for k, prob in enumerate(cfg["flip_probs"]):
        acc = {m: seed_mean(summary, f"{m}_{k}_final_test_accuracy") for m in METHODS}
        found.append(Claim.compare(
            f"pegr-vs-gd-flip-{prob:g}",
            f"label flips {prob:g}: PEGR's test accuracy minus GD's (GR: "
            f"{acc['gr'] - acc['gd']:+.3f}) is >= 0",
            acc["pegr"] - acc["gd"], ">=", 0.0))
        if prob > 0:
            memo = {m: seed_mean(summary, f"{m}_{k}_memorized") for m in METHODS}
            found.append(Claim.compare(
                f"pegr-memorizes-less-flip-{prob:g}",
                f"label flips {prob:g}: PEGR fits fewer flipped labels than GD (fractions: GD "
                f"{memo['gd']:.2f}, PEGR {memo['pegr']:.2f}, GR {memo['gr']:.2f}); "
                "measured PEGR - GD", memo["pegr"] - memo["gd"], "<", 0.0))
    return found


def plot(summary: Summary, outdir: Path) -> list[str]:
    cfg = summary["config"]
    probs = cfg["flip_probs"]
    fig, axes = plt.subplots(1, len(probs), figsize=(4.6 * len(probs), 3.7), squeeze=False)
    steps = seed_mean(summary, "step")
    for ax, (k, prob) in zip(axes[0], enumerate(probs)):
        for method in METHODS:
            lam = {"gd": "", "pegr": f" (lambda={cfg['lam_pegr']:g})",
                   "gr": f" (lambda={cfg['lam_gr']:g})"}[method]
            ax.plot(np.maximum(steps, 0.5), seed_mean(summary, f"{method}_{k}_test_accuracy"),
                    label=LABELS[method] + lam)
        ax.set_xscale("log")
        ax.set_xlabel("GD step (step 0 drawn at 0.5)")
        ax.set_ylabel("clean test accuracy")
        ax.set_title(f"{cfg['dataset']}, {cfg['n_train']} train, label flips {prob:g}")
        ax.legend(fontsize=8)
    fig.suptitle(f"MLP {cfg['width']} hidden, full-batch GD lr {cfg['lr']:g}, mean of "
                 f"{len(summary['seeds'])} seeds")
    return [save(fig, outdir, "test_accuracy.png")]


EXPERIMENT = Experiment(
    name="pegr-real",
    paper="Meng, Cao, Zou 2023",
    claim="On real images with label flips, PEGR memorizes fewer wrong labels and tests better "
          "than GD",
    config=Config,
    quick=Config(),
    full=Config(n_train=1200, n_test=597, steps=2000),
    run=run,
    claims=claims,
    plot=plot,
    seeds_quick=1,
    seeds_full=3,
    description=(
        "A ReLU MLP with 256 hidden units trains by full-batch GD (lr 0.5) on cross-entropy: "
        "plain, with PEGR (lambda 0.05) or with GR (lambda 0.5, 10x PEGR's as the signal-noise "
        "model suggests; both fixed before any run, not tuned) on digits (quick: 600 train, 1000 "
        "steps; full: 1200, 2000 steps, 3 seeds) with 0% and 30% of the training labels flipped "
        "to another class; test labels are clean. On MNIST 5k (--set dataset=mnist5k, 2000 train,"
        " 2000 steps, one seed) lr 0.5 made the penalized runs unstable: GR oscillated (final "
        "test accuracy 0.31 without flips), and with 30% flips PEGR fit 13% of the flipped labels"
        " (GD 100%) but tested 0.03 below GD; a smaller step is needed there."),
)
