"""Shared fixtures: a small synthetic experiment standing in for the registry in pipeline tests."""
# No "from __future__ import annotations" here: conftest modules of several folders share the
# module name "conftest", so string annotations of ToyConfig could not be resolved by name.


from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from noisereg._validate import check_int, check_positive
from noisereg.lab._plotting import plt, save
from noisereg.lab._threads import one_thread as _one_thread
from noisereg.lab.experiments import registry
from noisereg.lab.experiments.base import Experiment, seed_mean, seed_values
from noisereg.lab.experiments.claims import Claim, ClaimSpec


@dataclass(frozen=True)
class ToyConfig:
    """Mean of n uniform draws times scale: the expected value is scale / 2."""

    n: int = 2000
    scale: float = 1.0
    mode: Literal["plain", "squared"] = "plain"
    widths: tuple[int, ...] = (4, 8)

    def __post_init__(self) -> None:
        check_int("n", self.n, low=1)
        check_positive("scale", self.scale)


def _run(config: ToyConfig, seed: int) -> dict:
    draws = np.random.default_rng(seed).random(config.n)
    if config.mode == "squared":
        draws = draws**2
    return {"mean": config.scale * draws.mean(), "curve": (config.scale * draws[:5]).tolist()}


# The mean of n uniforms has standard deviation 1/sqrt(12 n) (0.013 at n=500): 0.05 is ~4 sigma.
MEAN = ClaimSpec("mean", "derived", "the sample mean over scale is within 0.05 of 1/2",
                 "<", 0.05, "a tolerance of ~4 standard deviations at n=500", rule="worst")
ABOVE = ClaimSpec("above-zero", "paper", "the sample mean over scale is above 0.4", ">", 0.4,
                  "E[U] = 1/2 for a uniform draw")
FITS = ClaimSpec("finite", "sanity", "every mean is finite and positive", ">", 0.0,
                 "a mean of positive draws is positive", rule="worst")


def _claims(summary: dict) -> list[Claim]:
    ratio = seed_values(summary, "mean") / summary["config"]["scale"]
    return [MEAN.decide(abs(ratio - 0.5)), ABOVE.decide(ratio), FITS.decide(ratio)]


def _plot(summary: dict, outdir: Path) -> list[str]:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(seed_mean(summary, "curve"))
    return [save(fig, outdir, "curve.png")]


TOY = Experiment(name="toy", paper="nobody 2024", claim="means are means", config=ToyConfig,
                 quick=ToyConfig(n=500), full=ToyConfig(), run=_run,
                 claim_specs=(MEAN, ABOVE, FITS), claims=_claims, plot=_plot,
                 seeds_quick=3, seeds_full=4, description="A uniform sample mean.")


@pytest.fixture
def toy_registry(monkeypatch: pytest.MonkeyPatch) -> Experiment:
    """Replace the experiment registry by the toy experiment alone, run in this process: the
    worker processes of a pool could not import it from a conftest module."""
    monkeypatch.setattr(registry, "experiments", lambda: {"toy": TOY})
    monkeypatch.setenv("NOISEREG_JOBS", "1")
    return TOY


@pytest.fixture
def one_thread():
    """Tiny tensors: intra-op threads only add synchronisation (very slow on a busy machine)."""
    with _one_thread():
        yield
