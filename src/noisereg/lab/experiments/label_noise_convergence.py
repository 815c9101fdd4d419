"""label-noise-convergence: how fast the time average of label-noise SGD reaches the Lasso.

Pillaud-Vivien, Reygner, Flammarion (2022) give non-asymptotic guarantees for the label-noise
flow on beta = u*u - v*v and conditions for support recovery. On a design that satisfies the
irrepresentable and beta_min conditions this experiment measures, for the time average of beta
over the second half of the run (the update is in :mod:`noisereg.dln.simulator`):

* its relative distance to Lasso(lambda), lambda = gamma delta^2, against continuous time
  t = gamma * steps for several lambdas: the log-log slope over the last decades (the rate) and
  the time after which it stays within 2%;
* at a fixed lambda, the distance at the end against gamma (delta = sqrt(lambda / gamma)): the
  chain's discretization bias, which must vanish as gamma -> 0;
* the support recovery time: the first time after which supp(average) = supp(beta*) for good,
  against lambda.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noisereg._seeding import derive
from noisereg._validate import check_int, check_positive, check_product, check_scale
from noisereg.dln import label_noise_sgd
from noisereg.dln.stability import check_label_noise_step
from noisereg.lab._plotting import plt, save
from noisereg.lab.experiments._label_noise import (
    SparseDesign,
    loglog_slope,
    settling_time,
    support,
    support_errors,
    tail_slope,
)
from noisereg.lab.experiments.base import Experiment, Metrics, Summary, seed_values
from noisereg.lab.experiments.claims import Claim, ClaimSpec
from noisereg.theory import lasso

TOLERANCE = 0.02  # the relative distance the time average must reach (and the claim's bound)
PREDICTED_RATE = -0.5  # averaging noise of an ergodic average (central limit theorem)


def _increasing(name: str, values: tuple[float, ...], at_least: int, high: float) -> None:
    if len(values) < at_least or list(values) != sorted(set(values)):
        raise ValueError(f"{name} must be at least {at_least} increasing values; got {values}")
    for value in values:
        check_scale(name, value, high=high)


@dataclass(frozen=True)
class Config(SparseDesign):
    init_scale: float = 0.1  # alpha
    step_size: float = 0.005  # gamma of the lambda sweep
    lambdas: tuple[float, ...] = (0.02, 0.04, 0.08)  # lambda = gamma delta^2
    horizon: float = 20_000.0  # continuous time gamma * steps of the lambda sweep
    fit_decades: float = 2.0  # the rate: log-log slope over the last decades of time
    bias_lambda: float = 0.04
    bias_step_sizes: tuple[float, ...] = (0.005, 0.01, 0.02, 0.04)  # gamma, delta = sqrt(l / g)
    bias_horizon: float = 20_000.0
    support_tol: float = 1e-4  # |beta_j| above this counts as in the support
    trace_points: int = 120  # log-spaced records of each run

    def __post_init__(self) -> None:
        super().__post_init__()
        check_scale("init_scale", self.init_scale, high=10.0)
        check_scale("step_size", self.step_size, high=1.0)
        _increasing("lambdas", self.lambdas, 2, high=1e3)  # a slope against lambda needs two
        check_scale("bias_lambda", self.bias_lambda, high=1e3)
        _increasing("bias_step_sizes", self.bias_step_sizes, 2, high=1.0)
        check_int("trace_points", self.trace_points, low=10, high=100_000)
        check_scale("horizon", self.horizon, high=1e9)
        check_scale("bias_horizon", self.bias_horizon, high=1e9)
        if self.steps < 10 or self.bias_horizon / self.bias_step_sizes[-1] < 10:
            raise ValueError("horizon / step_size and bias_horizon / max(bias_step_sizes) must "
                             "give at least 10 steps")
        check_product("horizon / step_size", self.steps, 1e9, "label-noise SGD steps")
        check_product("bias_horizon / min(bias_step_sizes)",
                      self.bias_horizon / self.bias_step_sizes[0], 1e9, "label-noise SGD steps")
        # delta = sqrt(lambda / gamma) (lambda = gamma delta^2): every run must be stable.
        shape = dict(n=self.n, d=self.d, k=len(self.magnitudes), beta_max=max(self.magnitudes),
                     init_scale=self.init_scale)
        check_label_noise_step(self.step_size, delta=math.sqrt(self.lambdas[-1] / self.step_size),
                               **shape)
        for gamma in self.bias_step_sizes:
            check_label_noise_step(gamma, delta=math.sqrt(self.bias_lambda / gamma),
                                   name="bias_step_sizes", **shape)
        check_positive("fit_decades", self.fit_decades)
        if self.fit_decades > math.log10(self.steps):
            raise ValueError(f"fit_decades must be <= log10(horizon / step_size) = "
                             f"{math.log10(self.steps):.3g} (the decades the run spans); got "
                             f"{self.fit_decades}")
        # The trace spans log10(steps) decades with trace_points records: keep >= 3 in the fit.
        if self.fit_decades * self.trace_points < 3 * math.log10(self.steps):
            raise ValueError(f"fit_decades must cover at least 3 trace records: >= "
                             f"{3 * math.log10(self.steps) / self.trace_points:.3g} here")
        check_scale("support_tol", self.support_tol, high=1.0)
        if self.support_tol >= min(self.magnitudes):
            raise ValueError("support_tol must be below the smallest of magnitudes")

    @property
    def steps(self) -> int:
        return round(self.horizon / self.step_size)


def _lambda_run(X: np.ndarray, y: np.ndarray, true: np.ndarray, config: Config, lam: float,
                seed: int) -> dict:
    reference = lasso(X, y, lam)
    result = label_noise_sgd(X, y, step_size=config.step_size,
                             delta=math.sqrt(lam / config.step_size), steps=config.steps,
                             init_scale=config.init_scale, reference=reference, seed=seed,
                             trace_points=config.trace_points)
    trace = result.trace
    errors = [support_errors(a, true, config.support_tol) for a in trace.averages]
    return {
        "lambda": lam, "time": trace.time, "distance": trace.distance_avg,
        "support_errors": errors,
        "rate": tail_slope(trace.time, trace.distance_avg, config.fit_decades),
        "time_to_tolerance": settling_time(trace.time, trace.distance_avg < TOLERANCE),
        "recovery_time": settling_time(trace.time, np.equal(errors, 0)),
        "lasso_has_true_support": bool(np.array_equal(support(reference, 0.0), true)),
    }


def _bias_run(X: np.ndarray, y: np.ndarray, config: Config, gamma: float, seed: int) -> float:
    result = label_noise_sgd(X, y, step_size=gamma, delta=math.sqrt(config.bias_lambda / gamma),
                             steps=round(config.bias_horizon / gamma),
                             init_scale=config.init_scale, reference=lasso(X, y,
                                                                           config.bias_lambda),
                             seed=seed)
    return float(result.trace.distance_avg[-1])


def run(config: Config, seed: int) -> Metrics:
    X, y, beta_star = config.design(seed)
    true = beta_star != 0
    # independent label noise per run: (0, i) for the lambda sweep, (1, i) for the bias runs
    sweep = [_lambda_run(X, y, true, config, lam, derive(seed, "label-noise", 0, i))
             for i, lam in enumerate(config.lambdas)]
    bias = [_bias_run(X, y, config, gamma, derive(seed, "label-noise", 1, i))
            for i, gamma in enumerate(config.bias_step_sizes)]
    recovery = [run["recovery_time"] for run in sweep]
    recovered = all(math.isfinite(t) for t in recovery)
    return {
        "sweep": sweep,
        "bias": {"step_size": config.bias_step_sizes, "distance": bias},
        "worst_rate": max(run["rate"] for run in sweep),
        "worst_rate_gap": max(abs(run["rate"] - PREDICTED_RATE) for run in sweep),
        "worst_final": max(float(run["distance"][-1]) for run in sweep),
        "bias_exponent": loglog_slope(config.bias_step_sizes, bias),
        "recovered": float(np.mean([math.isfinite(t) for t in recovery])),
        "recovery_slope": loglog_slope(config.lambdas, recovery) if recovered else math.nan,
        "lasso_support": float(np.mean([run["lasso_has_true_support"] for run in sweep]
                                       + [np.array_equal(support(lasso(X, y, config.bias_lambda),
                                                                 0.0), true)])),
    }


DECREASES = ClaimSpec(
    "distance-decreases", "paper",
    "the time average converges to Lasso(gamma delta^2) (the paper's non-asymptotic "
    "guarantee): the log-log slope of its relative distance against time over the last "
    "fit_decades decades of the run, largest over the lambdas",
    "<", 0.0, "a direction: a negative slope means the distance still decreases at the end")
RATE = ClaimSpec(
    "rate-is-inverse-square-root", "derived",
    "the distance falls like t^(-1/2) (derived: once the support is found, the error of an "
    "average over a window of length t/2 is averaging noise, which shrinks as t^(-1/2) by the "
    "central limit theorem for an ergodic process, while the order-gamma discretization bias "
    "stays below it): |slope + 1/2|, largest over the lambdas",
    "<", 0.25, "halfway from the predicted -1/2 to both no decrease (0) and a 1/t rate (-1)")
REACH = ClaimSpec(
    "reaches-2pct", "paper",
    "within the run the time average comes within 2% of Lasso(gamma delta^2) at every "
    "lambda: its relative l2 distance at the end, largest over the lambdas",
    "<", TOLERANCE, "a 2% tolerance on the distance to the exact Lasso (scikit-learn), room for "
    "the discretization bias (order gamma) and the averaging noise of a finite run",
    rule="worst")
BIAS = ClaimSpec(
    "bias-vanishes-with-gamma", "derived",
    "at a fixed lambda = gamma delta^2, the distance of the time average to the Lasso at the end "
    "goes to zero as gamma -> 0 (derived: the Lasso is the limit of the continuous-time flow, "
    "whose Euler-Maruyama discretization with step gamma adds a bias of order gamma): the "
    "exponent p of a power-law fit distance ~ gamma^p",
    ">", 0.0, "a direction: p > 0 means the distance vanishes with gamma (first order predicts "
    "p = 1 where the bias dominates the averaging noise)")
RECOVERED = ClaimSpec(
    "support-recovered", "paper",
    "under the irrepresentable and beta_min conditions the support of the time average becomes "
    "supp(beta*) and stays (|beta_j| > support_tol counts as in): share of the lambdas where "
    "this happens within the run",
    ">=", 1.0, "recovery at every lambda, on every seed", rule="worst")
RECOVERY_RATE = ClaimSpec(
    "recovery-time-scales-as-1-over-lambda", "derived",
    "the support recovery time falls like 1/lambda (derived: by Ito's formula log u_j and "
    "log v_j of an off-support coordinate drift down at rate lambda - |grad_j L|, which is at "
    "least lambda (1 - irrepresentable constant) near the Lasso solution): the log-log slope of "
    "the recovery time against lambda",
    "<", -0.5, "halfway between the predicted -1 and no dependence on lambda (0)")
LASSO_SUPPORT = ClaimSpec(
    "lasso-has-true-support", "sanity",
    "Lasso(lambda) itself has exactly supp(beta*) at every lambda of the experiment (the "
    "irrepresentable and beta_min conditions hold on the drawn design): share of the lambdas",
    ">=", 1.0, "the setting in which support recovery is defined", rule="worst")


def _lambda_note(summary: Summary, key: str, what: str) -> str:
    values = np.array([seed_values(summary, "sweep", i, key)
                       for i in range(len(summary["config"]["lambdas"]))])  # (lambda, seed)
    means = [f"{v:.3g}" if math.isfinite(v) else "not reached on every seed"
             for v in values.mean(axis=1)]  # a null (never) reads as NaN
    return f"{what} (mean over seeds): " + ", ".join(
        f"lambda={lam:g}: {v}" for lam, v in zip(summary["config"]["lambdas"], means))


def claims(summary: Summary) -> list[Claim]:
    recovered = bool(np.all(seed_values(summary, "recovered") == 1.0))
    return [
        DECREASES.decide(seed_values(summary, "worst_rate"),
                         note=_lambda_note(summary, "rate", "slope")),
        RATE.decide(seed_values(summary, "worst_rate_gap")),
        REACH.decide(seed_values(summary, "worst_final"),
                     note=_lambda_note(summary, "time_to_tolerance", "time to 2%")),
        BIAS.decide(seed_values(summary, "bias_exponent")),
        RECOVERED.decide(seed_values(summary, "recovered")),
        RECOVERY_RATE.decide(seed_values(summary, "recovery_slope"),
                             note=_lambda_note(summary, "recovery_time", "recovery time")
                             if recovered else "no slope: the support was not recovered at "
                                               "some lambda within the run"),
        LASSO_SUPPORT.decide(seed_values(summary, "lasso_support")),
    ]


def _plot_distance(summary: Summary, outdir: Path) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, lam in enumerate(summary["config"]["lambdas"]):
        time = seed_values(summary, "sweep", i, "time")[0]
        curves = seed_values(summary, "sweep", i, "distance")
        ax.loglog(time, curves.T, color=f"C{i}", lw=0.5, alpha=0.4)
        rate = seed_values(summary, "sweep", i, "rate").mean()
        reach = seed_values(summary, "sweep", i, "time_to_tolerance").mean()
        ax.loglog(time, np.exp(np.log(curves).mean(axis=0)), color=f"C{i}", lw=2,
                  label=f"λ={lam:g}: slope {rate:.2f}, within 2% from t={reach:.3g}")
        if math.isfinite(reach):
            ax.axvline(reach, color=f"C{i}", ls=":", lw=0.8)
    end = time[-1]
    window = time >= end / 10 ** summary["config"]["fit_decades"]
    ax.axvspan(time[window][0], end, color="0.9", zorder=0, label="fit window")
    anchor = np.exp(np.log(curves[:, window][:, 0]).mean())  # last lambda's curve, window start
    ax.loglog(time[window], 2 * anchor * (time[window] / time[window][0]) ** PREDICTED_RATE,
              "k--", lw=0.8, label="∝ t^(-1/2)")
    ax.axhline(TOLERANCE, color="k", lw=0.6, label="2%")
    ax.set(xlabel="continuous time t = γ · steps",
           ylabel="‖time average − Lasso(λ)‖ / ‖Lasso(λ)‖",
           title=f"Convergence to the Lasso (γ = {summary['config']['step_size']:g}; thin: seeds)")
    ax.legend(fontsize=7)
    return save(fig, outdir, "distance_vs_time.png")


def _plot_bias(summary: Summary, outdir: Path) -> str:
    gammas = np.asarray(summary["config"]["bias_step_sizes"])
    distance = seed_values(summary, "bias", "distance")  # (seed, gamma)
    exponent = seed_values(summary, "bias_exponent").mean()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    ax.loglog(np.tile(gammas, len(distance)), distance.ravel(), "o", color="C0", alpha=0.4,
              mfc="none", label="seeds")
    mean = np.exp(np.log(distance).mean(axis=0))
    ax.loglog(gammas, mean, "o-", color="C0", label=f"geometric mean, fitted exponent "
                                                    f"{exponent:.2f}")
    ax.loglog(gammas, mean[-1] * gammas / gammas[-1], "k--", lw=0.8, label="∝ γ (first order)")
    ax.set_xticks(gammas, [f"{g:g}" for g in gammas])
    ax.tick_params(axis="x", which="minor", labelbottom=False)
    ax.set(xlabel="step size γ (δ = sqrt(λ / γ))", ylabel="distance to Lasso(λ) at the end",
           title=f"Discretization bias at λ = γδ² = {summary['config']['bias_lambda']:g}")
    ax.legend(fontsize=7)
    return save(fig, outdir, "bias_vs_step_size.png")


def _plot_support(summary: Summary, outdir: Path) -> str:
    lambdas = np.asarray(summary["config"]["lambdas"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    for i, lam in enumerate(lambdas):
        errors = seed_values(summary, "sweep", i, "support_errors")
        left.semilogx(seed_values(summary, "sweep", i, "time")[0], errors.mean(axis=0),
                      color=f"C{i}", label=f"λ={lam:g}")
    left.set(xlabel="continuous time t", ylabel="|supp(average) Δ supp(β*)| (mean over seeds)",
             title="Coordinates wrongly in or out of the support")
    left.legend(fontsize=7)
    recovery = np.array([seed_values(summary, "sweep", i, "recovery_time")
                         for i in range(len(lambdas))])  # (lambda, seed); NaN: not recovered
    for s in range(recovery.shape[1]):
        right.loglog(lambdas, recovery[:, s], "o-", color="0.6", lw=0.6, mfc="none")
    mean = np.exp(np.log(recovery).mean(axis=1))  # NaN (not drawn) where a seed never recovered
    right.loglog(lambdas, mean, "o-", color="C3", lw=2, label="geometric mean (grey: seeds)")
    right.loglog(lambdas, mean[0] * lambdas[0] / lambdas, "k--", lw=0.8, label="∝ 1/λ")
    right.set(xlabel="λ = γδ²", ylabel="support recovery time",
              title="First time after which supp(average) = supp(β*)")
    right.legend(fontsize=7)
    return save(fig, outdir, "support_recovery.png")


def plot(summary: Summary, outdir: Path) -> list[str]:
    return [_plot_distance(summary, outdir), _plot_bias(summary, outdir),
            _plot_support(summary, outdir)]


EXPERIMENT = Experiment(
    name="label-noise-convergence",
    paper="Pillaud-Vivien et al. 2022",
    claim="The time average of label-noise SGD converges to Lasso(gamma delta^2) at a measured "
          "rate and within 2% at every lambda, its discretization bias vanishes as gamma -> 0 at "
          "a fixed lambda, and it recovers supp(beta*) in a time that falls like 1/lambda.",
    config=Config,
    quick=Config(),
    full=Config(step_size=0.0025, horizon=50_000.0, trace_points=200,
                bias_step_sizes=(0.0025, 0.005, 0.01, 0.02, 0.04), bias_horizon=100_000.0),
    run=run,
    claim_specs=(DECREASES, RATE, REACH, BIAS, RECOVERED, RECOVERY_RATE, LASSO_SUPPORT),
    claims=claims,
    plot=plot,
    description=(
        "Gaussian design with unit columns, redrawn until the irrepresentable constant is below "
        "max_irrepresentable, beta*_S of the given magnitudes with random signs; label-noise SGD "
        "(batch 1, Rademacher noise, u = v = alpha) run by the compiled simulator and averaged "
        "over the second half of the run, every run with its own noise draws. Lambda sweep: one "
        "gamma, delta = sqrt(lambda / gamma); the rate is the least-squares log-log slope of "
        "the distance to the exact Lasso (scikit-learn) over the last fit_decades decades, the "
        "time to 2% the first record after which the distance stays below 2%. Bias: the same "
        "continuous-time horizon for every gamma, so the averaging noise is comparable and the "
        "trend in gamma is the discretization bias. Support recovery time: the first record "
        "after which the support of the average (|beta_j| > support_tol) equals supp(beta*) "
        "at every later record; it grows only logarithmically as support_tol shrinks."),
    version=2,  # the one seed derivation (issue 12) draws other numbers
)
