"""pegr-phase-diagram: where GD, GR and PEGR generalize on a grid of training-set sizes ``n`` and
signal strengths ``||mu||`` of the signal-noise model (Cao et al. 2022; Meng, Cao, Zou 2023).

Cao et al.: GD overfits benignly when ``n ||mu||^q`` is large against ``(sigma_p sqrt(d))^q`` and
harmfully when it is small, so the phase boundary is the curve

    n ||mu||^q = c (sigma_p sqrt(d))^q,   i.e.   ||mu|| = sigma_p sqrt(d) (c / n)^(1/q),

for a constant ``c`` the paper does not give (drawn for ``boundary_c``). Meng et al.: PEGR learns
the signal in settings where GD memorizes noise, so the cells where PEGR generalizes should
strictly contain GD's.

Per seed, every cell trains GD, PEGR and GR from one initialization on one training set with
the closed-form engine of :mod:`noisereg.lab.experiments._signal_noise_training`. A cell's test
error is "small" when the upper end of its 95% Student t interval over the seeds lies below
``SMALL`` (the rule :data:`CELL_SMALL`, fixed before any run).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from noisereg._validate import check_int, check_scale
from noisereg.lab._plotting import plt, save
from noisereg.lab.experiments._signal_noise_training import (
    SignalNoiseConfig,
    make_problem,
    train_runs,
)
from noisereg.lab.experiments.base import Experiment, Metrics, Summary, seed_values
from noisereg.lab.experiments.claims import Claim, ClaimSpec
from noisereg.lab.experiments.pegr_signal_noise import LABELS, METHODS

SMALL = 0.1

CELL_SMALL = ClaimSpec(
    "cell-test-error-small", "derived",
    "a cell's test error is small: the upper end of its 95% interval over the seeds is below "
    f"{SMALL:g}",
    "<", SMALL, "a fifth of chance (0.5); fixed before any run (the per-cell rule, not a claim)")
GD_FITS = ClaimSpec(
    "gd-fits-training-set", "sanity",
    "GD fits every training label in every cell (the largest final training error over the "
    "cells is 0 on every seed): overfitting, benign or harmful, needs a fitted training set",
    "<=", 0.0, "d >> n: the network can interpolate, and the paper's GD reaches zero training "
    "error", rule="worst")
FINITE = ClaimSpec(
    "no-divergence", "sanity",
    "every run of every cell (GD, PEGR, GR) stays finite; measured: the number of cells and "
    "methods with a non-finite test error, per seed",
    "<=", 0.0, "a diverged run has no test error; the step must be small for the penalties' "
    "curvature", rule="worst")
HARMFUL = ClaimSpec(
    "gd-harmful-corner", "paper",
    "in the harmful corner (smallest n, smallest ||mu||), GD's final test error (clean labels) "
    "stays near chance",
    ">", 0.3, "the paper bounds the test error below by a constant without its value; 0.3 is "
    "the threshold of pegr-signal-noise, closer to chance (0.5) than to zero")
BENIGN = ClaimSpec(
    "gd-benign-corner", "paper",
    "in the benign corner (largest n, largest ||mu||), GD's final test error (clean labels) is "
    f"small (below {SMALL:g})",
    "<", SMALL, "the paper's benign overfitting reaches the Bayes error (0 here: no label "
    f"flips); {SMALL:g} is the per-cell 'small' of this experiment, fixed before any run")
CONTAINS = ClaimSpec(
    "pegr-small-contains-gd", "paper",
    "every cell where GD's test error is small is one where PEGR's is small; measured: the "
    "number of cells small for GD and not for PEGR (per-cell rule over the seeds)",
    "<=", 0.0, "the paper's claim is a set inclusion: PEGR learns the signal wherever GD does",
    rule="worst")
STRICT = ClaimSpec(
    "pegr-small-more-cells", "paper",
    "PEGR's test error is small in more cells than GD's; measured: PEGR's count of small cells "
    "minus GD's (per-cell rule over the seeds)",
    ">", 0.0, "the paper's claim: PEGR learns the signal in settings where GD memorizes noise "
    "(with the inclusion above, the containment is strict)", rule="worst")
GR_MORE = ClaimSpec(
    "gr-small-more-cells", "exploratory",
    "at PEGR's lambda, is GR's test error small in more cells than GD's? Measured: GR's count "
    "of small cells minus GD's",
    ">", 0.0, "a question, not the paper's: GR penalizes noise memorization about n times less "
    "than PEGR at equal lambda (pegr-lambda-sweep)", rule="worst")
SPECS = (GD_FITS, FINITE, HARMFUL, BENIGN, CONTAINS, STRICT, GR_MORE)


def snr_ratio(n: float, mu_norm: float, sigma_p: float, d: float, q: float) -> float:
    """``n ||mu||^q / (sigma_p sqrt(d))^q``: above a constant, benign overfitting (Cao et al.)."""
    return n * (mu_norm / (sigma_p * math.sqrt(d))) ** q


def boundary_mu(n: float, c: float, sigma_p: float, d: float, q: float) -> float:
    """The ``||mu||`` on the phase boundary ``n ||mu||^q = c (sigma_p sqrt(d))^q`` at ``n``."""
    return sigma_p * math.sqrt(d) * (c / n) ** (1.0 / q)


def small_cells(errors: np.ndarray) -> np.ndarray:
    """Per cell of ``errors [seeds, rows, cols]``: is the test error small (:data:`CELL_SMALL`
    decided on the cell's seeds; a diverged seed or a single seed makes it not small)."""
    _, rows, cols = errors.shape
    return np.array([[CELL_SMALL.decide(errors[:, i, j]).holds for j in range(cols)]
                     for i in range(rows)], dtype=bool)


def _increasing(name: str, values: tuple, check) -> None:
    if len(values) < 2:
        raise ValueError(f"{name} must hold at least two values, got {values}")
    for v in values:
        check(name, v)
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name} must be strictly increasing, got {values}")


@dataclass(frozen=True)
class Config:
    ns: tuple[int, ...] = (4, 8, 12, 18, 27)  # training-set sizes (rows)
    mu_norms: tuple[float, ...] = (2.0, 3.5, 6.0, 10.0, 16.0)  # signal strengths (columns)
    d: int = 400
    m: int = 10
    q: float = 3.0
    sigma_p: float = 1.0
    sigma0: float = 0.03
    n_test: int = 500
    eta: float = 0.02
    steps: int = 1600
    lam: float = 1e-2  # lambda of PEGR and GR
    boundary_c: float = 1.0  # the constant c of the drawn boundary
    engine: Literal["closed_form", "autograd"] = "closed_form"

    def __post_init__(self) -> None:
        # the bounds of SignalNoiseConfig's n and mu_norm, named after the grid's fields
        _increasing("ns", self.ns, lambda name, v: check_int(name, v, low=1, high=10_000))
        _increasing("mu_norms", self.mu_norms, lambda name, v: check_scale(name, v, high=1e3))
        check_scale("lam", self.lam, high=1e3)
        check_scale("boundary_c", self.boundary_c, high=1e6)
        self.cell(self.ns[-1], self.mu_norms[-1])  # the shared fields, at the largest n
        low = snr_ratio(self.ns[0], self.mu_norms[0], self.sigma_p, self.d, self.q)
        high = snr_ratio(self.ns[-1], self.mu_norms[-1], self.sigma_p, self.d, self.q)
        if not low < self.boundary_c < high:
            raise ValueError(f"the grid must straddle the boundary: n ||mu||^q / (sigma_p "
                             f"sqrt(d))^q runs from {low:.3g} to {high:.3g} over ns and mu_norms, "
                             f"boundary_c is {self.boundary_c:g}")

    def cell(self, n: int, mu_norm: float) -> SignalNoiseConfig:
        """The signal-noise problem of one cell."""
        return SignalNoiseConfig(n=n, d=self.d, m=self.m, q=self.q, mu_norm=mu_norm,
                                 sigma_p=self.sigma_p, sigma0=self.sigma0, n_test=self.n_test,
                                 eta=self.eta, steps=self.steps, engine=self.engine)


def run(config: Config, seed: int) -> Metrics:
    """The whole grid for one seed: per method, the final test and training errors
    ``[len(ns), len(mu_norms)]``; ``snr``: ``n ||mu||^q / (sigma_p sqrt(d))^q`` per cell."""
    grid = {method: {"test_error": [], "train_error": []} for method in METHODS}
    for n in config.ns:
        rows = {method: {"test_error": [], "train_error": []} for method in METHODS}
        for mu_norm in config.mu_norms:
            problem = make_problem(config.cell(n, mu_norm), seed)
            common = {"eta": config.eta, "steps": config.steps, "records": 2,
                      "engine": config.engine}
            gd, pegr = train_runs(problem, penalty="pegr", lams=[0.0, config.lam], **common).runs
            (gr,) = train_runs(problem, penalty="gr", lams=[config.lam], **common).runs
            for method, traj in zip(METHODS, (gd, pegr, gr)):
                for key in ("test_error", "train_error"):
                    rows[method][key].append(traj[key][-1])
        for method in METHODS:
            for key in ("test_error", "train_error"):
                grid[method][key].append(rows[method][key])
    snr = [[snr_ratio(n, mu, config.sigma_p, config.d, config.q) for mu in config.mu_norms]
           for n in config.ns]
    return {**grid, "snr": snr}


def claims(summary: Summary) -> list[Claim]:
    test = {method: seed_values(summary, method, "test_error") for method in METHODS}
    small = {method: small_cells(errors) for method, errors in test.items()}
    seeds = len(summary["runs"])
    note = f"counts over {small['gd'].size} cells, each decided on {seeds} seed(s)"
    return [
        GD_FITS.decide(seed_values(summary, "gd", "train_error").max(axis=(1, 2))),
        FINITE.decide(sum((~np.isfinite(errors)).sum(axis=(1, 2)) for errors in test.values())),
        HARMFUL.decide(test["gd"][:, 0, 0]),
        BENIGN.decide(test["gd"][:, -1, -1]),
        CONTAINS.decide([float((small["gd"] & ~small["pegr"]).sum())], note=note),
        STRICT.decide([float(small["pegr"].sum() - small["gd"].sum())], note=note),
        GR_MORE.decide([float(small["gr"].sum() - small["gd"].sum())], note=note),
    ]


def plot(summary: Summary, outdir: Path) -> list[str]:
    cfg = summary["config"]
    ns, mus = np.array(cfg["ns"], dtype=float), np.array(cfg["mu_norms"], dtype=float)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharey=True)
    for ax, method in zip(axes, METHODS):
        errors = seed_values(summary, method, "test_error")
        image = ax.imshow(errors.mean(axis=0), origin="lower", cmap="viridis", vmin=0.0,
                          vmax=0.5, aspect="auto",
                          extent=(-0.5, len(mus) - 0.5, -0.5, len(ns) - 0.5))
        rows, cols = np.nonzero(small_cells(errors))
        ax.plot(cols, rows, "w*", ms=9, label=f"small (95% interval < {SMALL:g})")
        # the boundary's ||mu|| at each n, in the axes' cell coordinates (log-spaced edges)
        dense = np.geomspace(ns[0], ns[-1], 200)
        mu_b = [boundary_mu(n, cfg["boundary_c"], cfg["sigma_p"], cfg["d"], cfg["q"])
                for n in dense]
        ax.plot(np.interp(np.log(mu_b), np.log(mus), np.arange(len(mus)), left=np.nan,
                          right=np.nan),
                np.interp(np.log(dense), np.log(ns), np.arange(len(ns))), "r-", lw=2,
                label=f"n ||mu||^q = {cfg['boundary_c']:g} (sigma_p sqrt d)^q")
        ax.set_xticks(range(len(mus)), [f"{v:g}" for v in mus])
        ax.set_yticks(range(len(ns)), [f"{v:g}" for v in ns])
        ax.set_xlabel("||mu||")
        lam = "" if method == "gd" else f" (lambda={cfg['lam']:g})"
        ax.set_title(f"{LABELS[method]}{lam}: test error")
        fig.colorbar(image, ax=ax, fraction=0.046)
    axes[0].set_ylabel("n (training examples)")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Signal-noise model, d={cfg['d']}, sigma_p={cfg['sigma_p']:g}, q={cfg['q']:g}, "
                 f"{cfg['steps']} GD steps of {cfg['eta']:g} (mean of {len(summary['seeds'])} "
                 "seeds)")
    return [save(fig, outdir, "phase_diagram.png")]


EXPERIMENT = Experiment(
    name="pegr-phase-diagram",
    paper="Meng, Cao, Zou 2023",
    claim="GD overfits harmfully where n ‖mu‖^q is small against (sigma_p sqrt d)^q and "
          "benignly where it is large; the cells where PEGR generalizes strictly contain GD's; "
          "GR at PEGR's lambda, an open question",
    config=Config,
    quick=Config(),
    full=Config(ns=(4, 8, 12, 16, 24, 32, 48), mu_norms=(2.0, 3.0, 4.5, 6.5, 10.0, 14.0, 20.0),
                n_test=2000, steps=2500),
    run=run,
    claim_specs=SPECS,
    claims=claims,
    plot=plot,
    description=(
        "A grid of training-set sizes n (rows) and signal strengths ||mu|| (columns) of the "
        "signal-noise model (sigma_p=1, q=3); in every cell, full-batch GD, PEGR and GR (one "
        "lambda for both penalties) train the ReLU^3 patch CNN from one initialization with the "
        "closed-form gradient in the span of the training patches (tested against autograd). "
        "The quick preset is cheap by a small dimension (d=400, so (sigma_p sqrt d)^q = 8000 and "
        "the grid still crosses the boundary), a larger initialization (sigma_0=0.03, small "
        "enough for PEGR's step to stay stable at the start) and step (0.02) that shorten "
        "training to 1600 steps, n <= 27 and 500 test samples; the full "
        "preset is a finer, larger grid with more steps and test samples. A cell's test error "
        "is small when the upper end of its 95% Student t interval over the seeds is below "
        "0.1, a rule fixed before any run; the containment claims compare counts of such cells. "
        "The red curve is n ||mu||^q = c (sigma_p sqrt d)^q for the configured c; the paper "
        "does not give c. GD fitting every training set is a sanity check: a failed one voids "
        "the other verdicts, and so does a diverged run."),
    version=2,  # the one seed derivation (issue 12) draws other numbers
)
