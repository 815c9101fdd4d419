"""pegr-signal-noise: in the harmful-overfitting regime of the signal-noise model, GD memorizes
noise and does not generalize; PEGR learns the signal (Meng, Cao, Zou 2023).

Full-batch GD, PEGR and GR (same lambda) train the PatchCNN of Cao et al. (2022) on n = 20
examples with d = 2000, ||mu|| = 4, sigma_p = 1, where (sigma_p sqrt(d))^q / n >> ||mu||^q.
Signal learning gamma and noise memorization rho are tracked with
:func:`noisereg.diagnostics.signal_noise_coefficients`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noisereg._validate import check_int, check_scale
from noisereg.lab._plotting import log_steps, plt, save
from noisereg.lab.experiments._signal_noise_training import (
    CURVES,
    SignalNoiseConfig,
    make_problem,
    train_runs,
)
from noisereg.lab.experiments.base import Experiment, Metrics, Summary, seed_mean, seed_values
from noisereg.lab.experiments.claims import Claim, ClaimSpec

METHODS = ("gd", "pegr", "gr")
LABELS = {"gd": "GD", "pegr": "PEGR", "gr": "GR"}

GD_FITS = ClaimSpec(
    "gd-fits-training-set", "sanity",
    "GD fits every training label (final training error 0 on every seed): overfitting, harmful "
    "or not, needs a fitted training set",
    "<=", 0.0, "d >> n: the network can interpolate, and the paper's GD reaches zero training "
    "error", rule="worst")
PEGR_FITS = ClaimSpec(
    "pegr-fits-training-set", "sanity",
    "PEGR fits every training label too (final training error 0 on every seed), so its test "
    "error is that of an interpolating model",
    "<=", 0.0, "the paper's PEGR reaches zero training error", rule="worst")
HARMFUL = ClaimSpec(
    "gd-harmful-overfitting", "paper",
    "GD's final test error (clean labels) stays far from zero, near chance: it memorizes the "
    "noise patches instead of learning the signal",
    ">", 0.3, "the paper gives a test error bounded below by a constant, not its value; 0.3 is "
    "far above the 0.05 at which PEGR is said to generalize and closer to chance (0.5)")
GENERALIZES = ClaimSpec(
    "pegr-generalizes", "paper",
    "PEGR's final test error (clean labels) is small: it generalizes where GD does not",
    "<", 0.05, "the paper's PEGR reaches near-optimal test error (0 here: no label flips); 0.05 "
    "allows for finite n and training time")
SIGNAL = ClaimSpec(
    "pegr-learns-signal", "paper",
    "PEGR's signal learning (max over training of max_{j,r} gamma) exceeds ten times GD's; "
    "measured: PEGR's minus 10x GD's, paired by seed",
    ">", 0.0, "the paper contrasts signal learning of order one (PEGR) with a vanishing one "
    "(GD); an order of magnitude stands for that contrast")
MEMORIZES_LESS = ClaimSpec(
    "pegr-memorizes-less-noise", "paper",
    "PEGR memorizes less noise than GD: its noise memorization (max over training of "
    "max_{j,r,i} rho) is below GD's; measured: PEGR's minus GD's, paired by seed",
    "<", 0.0, "the paper's claim is a sign: PEGR suppresses noise memorization")
SPECS = (GD_FITS, PEGR_FITS, HARMFUL, GENERALIZES, SIGNAL, MEMORIZES_LESS)


@dataclass(frozen=True)
class Config(SignalNoiseConfig):
    lam_pegr: float = 3e-3  # lambda of PEGR
    lam_gr: float = 3e-3  # lambda of GR (the same: GR needs a larger one, see pegr-lambda-sweep)
    records: int = 41  # recorded steps along the trajectory

    def __post_init__(self) -> None:
        super().__post_init__()
        check_scale("lam_pegr", self.lam_pegr, high=1e3)
        check_scale("lam_gr", self.lam_gr, high=1e3)
        check_int("records", self.records, low=2, high=10_000)


def run(config: Config, seed: int) -> Metrics:
    """Per method: the trajectories (``CURVES``) and their final / extreme values."""
    problem = make_problem(config, seed)
    common = {"eta": config.eta, "steps": config.steps, "records": config.records,
              "engine": config.engine}
    gd, pegr = train_runs(problem, penalty="pegr", lams=[0.0, config.lam_pegr], **common).runs
    (gr,) = train_runs(problem, penalty="gr", lams=[config.lam_gr], **common).runs
    return {method: {**{key: traj[key] for key in CURVES},
                     "final_test_error": traj["test_error"][-1],
                     "final_train_error": traj["train_error"][-1],
                     "max_gamma": max(traj["gamma_max"]),
                     "max_rho": max(traj["rho_max"]),
                     "min_rho": min(traj["rho_min"])}
            for method, traj in zip(METHODS, (gd, pegr, gr))}


def claims(summary: Summary) -> list[Claim]:
    def final(method: str, key: str) -> np.ndarray:
        return seed_values(summary, method, key)

    return [
        GD_FITS.decide(final("gd", "final_train_error")),
        PEGR_FITS.decide(final("pegr", "final_train_error")),
        HARMFUL.decide(final("gd", "final_test_error")),
        GENERALIZES.decide(final("pegr", "final_test_error")),
        SIGNAL.decide(final("pegr", "max_gamma"), baseline=10.0 * final("gd", "max_gamma")),
        MEMORIZES_LESS.decide(final("pegr", "max_rho"), baseline=final("gd", "max_rho")),
    ]


def _lambda(cfg: dict, method: str) -> str:
    return "" if method == "gd" else f" (lambda={cfg['lam_' + method]:g})"


def plot(summary: Summary, outdir: Path) -> list[str]:
    cfg = summary["config"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.9))
    for method, color in zip(METHODS, ("C0", "C1", "C2")):
        steps = log_steps(seed_mean(summary, method, "step"), *axes)
        label = LABELS[method] + _lambda(cfg, method)
        axes[0].plot(steps, seed_mean(summary, method, "gamma_max"), color=color, label=label)
        axes[1].plot(steps, seed_mean(summary, method, "rho_max"), color=color,
                     label=f"{label}: max rho")
        axes[1].plot(steps, seed_mean(summary, method, "rho_min"), color=color, ls="--",
                     label=f"{LABELS[method]}: min rho")
    axes[0].set_title("Signal learning: max_{j,r} gamma")
    axes[0].set_ylabel("gamma")
    axes[1].set_title("Noise memorization: max and min rho")
    axes[1].set_ylabel("rho")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"Signal-noise model: n={cfg['n']}, d={cfg['d']}, ||mu||={cfg['mu_norm']:g}, "
                 f"sigma_p={cfg['sigma_p']:g}, eta={cfg['eta']:g} (mean of "
                 f"{len(summary['seeds'])} seeds)")
    names = [save(fig, outdir, "gamma_rho.png")]
    fig, ax = plt.subplots(figsize=(6, 3.9))
    for method, color in zip(METHODS, ("C0", "C1", "C2")):
        steps = log_steps(seed_mean(summary, method, "step"), ax)
        ax.plot(steps, seed_mean(summary, method, "test_error"), color=color,
                label=f"{LABELS[method]}{_lambda(cfg, method)} test")
        ax.plot(steps, seed_mean(summary, method, "train_error"), color=color, ls=":",
                label=f"{LABELS[method]} train")
    ax.set_ylabel("0-1 error")
    ax.set_ylim(-0.02, 0.75)
    ax.set_title("Train error and test error (fresh clean samples)")
    ax.legend(ncol=2, fontsize=7)
    return [*names, save(fig, outdir, "errors.png")]


EXPERIMENT = Experiment(
    name="pegr-signal-noise",
    paper="Meng, Cao, Zou 2023",
    claim="GD overfits harmfully in the signal-noise model; PEGR learns the signal, memorizes "
          "less noise and generalizes",
    config=Config,
    quick=Config(),
    full=Config(n_test=10000),
    run=run,
    claim_specs=SPECS,
    claims=claims,
    plot=plot,
    description=(
        "Full-batch GD, PEGR and GR (the same lambda for both penalties) train the ReLU^3 patch "
        "CNN (m=10, sigma_0=0.01) for 20,000 steps of 0.02 on n=20 signal-noise examples "
        "(d=2000, ||mu||=4, sigma_p=1), a harmful-overfitting regime of Cao et al. (2022), "
        "unscaled in quick, with the closed-form gradient in the span of the training patches "
        "(tested against autograd). gamma and rho are the exact coefficients of W - W^0 = "
        "j gamma mu/||mu||^2 + sum_i rho_i xi_i/||xi_i||^2 (W^0 excluded), taken at their "
        "largest over the recorded steps. Training fits are sanity checks: a failed one voids "
        "the other verdicts. GR at PEGR's lambda is drawn for reference, not claimed on: "
        "pegr-lambda-sweep measures the lambda GR needs."),
    version=2,  # the one seed derivation (issue 12) draws other numbers
)
