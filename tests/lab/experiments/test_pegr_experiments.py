"""PEGR experiments: the closed-form engine of the signal-noise experiments follows the same
trajectory as autograd training; the derivation behind pegr-lambda-sweep's predicted ratio
against autograd penalties; the lambda grid, crossing and claim statistics on exact small cases;
config validation (end-to-end runs: test_pipeline.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from noisereg.data import signal_noise
from noisereg.gradreg import gr_penalty, pegr_penalty
from noisereg.lab.experiments import (
    pegr_lambda_sweep,
    pegr_real,
    pegr_robustness,
    pegr_signal_noise,
)
from noisereg.lab.experiments._signal_noise_training import record_and_train
from noisereg.lab.experiments.base import seed_mean, seed_values
from noisereg.models import PatchCNN
from noisereg.models.patch_cnn import logistic_losses

SMALL = dict(n=6, d=60, n_test=50, steps=40, eta=0.5, sigma0=0.05)
MODULES = {m.EXPERIMENT.name: m for m in (pegr_lambda_sweep, pegr_real, pegr_robustness,
                                          pegr_signal_noise)}


def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _leaves(value, f"{prefix}{key}/")
        else:
            out[prefix + key] = value
    return out


def test_closed_form_engine_follows_autograd_training() -> None:
    exp = pegr_signal_noise.EXPERIMENT
    config = dataclasses.replace(exp.quick, **SMALL, records=5, lam_pegr=0.05, lam_gr=0.05)
    fast = _leaves(exp.run(config, 3))
    slow = _leaves(exp.run(dataclasses.replace(config, engine="autograd"), 3))
    assert fast.keys() == slow.keys()
    for key in fast:
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-7, atol=1e-9, err_msg=key,
                                   equal_nan=False)
    assert fast["pegr/max_gamma"] > 0  # the run moved


def test_gr_noise_penalty_is_pegr_over_n() -> None:
    # the derivation of pegr-lambda-sweep's ratio n: with the noise patches alone (signal patch
    # zero), ||sum_i g_i||^2 = sum_i ||g_i||^2 + cross terms, and Cauchy-Schwarz bounds the
    # cross terms by (n - 1) max_{i != k} |cos(xi_i, xi_k)| sum_i ||g_i||^2
    n, d = 10, 20000
    data = signal_noise(n, d, 1.0, 1.0, seed=4, dtype=torch.float64)
    x = data.x.clone()
    x[:, 0] = 0.0
    model = PatchCNN(d, 5, 3.0, sigma0=1 / math.sqrt(d), seed=5, dtype=torch.float64)
    pegr = float(pegr_penalty(model, logistic_losses, x, data.y).detach())
    gr = float(gr_penalty(model, logistic_losses, x, data.y).detach())
    unit = data.xi / data.xi.norm(dim=1, keepdim=True)
    cos = (unit @ unit.T - torch.eye(n, dtype=torch.float64)).abs().max()
    assert pegr > 0
    assert abs(n * gr / pegr - 1) <= (n - 1) * float(cos)
    assert (n - 1) * float(cos) < 0.5  # the bound is informative at d >> n


def test_lambda_grid_has_the_decade_points() -> None:
    grid = pegr_lambda_sweep.lambda_grid(1e-4, 1e-1, 4)
    assert len(grid) == 13
    np.testing.assert_allclose(grid, 10.0 ** (np.arange(-16, -3) / 4), rtol=1e-12)
    np.testing.assert_allclose(pegr_lambda_sweep.lambda_grid(3e-4, 1e-2, 4),
                               10.0 ** (np.arange(-14, -7) / 4), rtol=1e-12)


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([0.5, 0.4, 0.0, 0.0], (2.0, 3.0)),
        ([0.5, 0.04, 0.3, 0.0], (1.0, 2.0)),  # the first working lambda, not the last
        ([0.5, math.nan, 0.05, 0.0], (2.0, 3.0)),  # a diverged run does not work
        ([0.5, 0.5, math.nan, math.nan], (math.nan, math.nan)),  # none works
        ([0.0, 0.5, 0.0, 0.0], (math.nan, math.nan)),  # below the grid
    ],
)
def test_bracket_holds_the_first_working_lambda(errors, expected) -> None:
    lo, hi = pegr_lambda_sweep.bracket([1.0, 2.0, 3.0, 4.0], errors, 0.05)
    np.testing.assert_equal((lo, hi), expected)


def _summary(config: dict, runs: list[dict]) -> dict:
    return {"config": config, "seeds": list(range(len(runs))),
            "runs": [{"seed": i, "metrics": m} for i, m in enumerate(runs)]}


def test_lambda_sweep_claims_use_the_geometric_mean_ratio() -> None:
    crossings = [(1e-3, 2e-2), (2e-3, 5e-2), (1.5e-3, 3e-2)]
    runs = [{"gd": {"train_error": 0.0}, "pegr": {"crossing": p}, "gr": {"crossing": g}}
            for p, g in crossings]
    found = {c.name: c for c in pegr_lambda_sweep.claims(_summary({"n": 20}, runs))}
    ratios = [g / p for p, g in crossings]
    expected = math.exp(np.mean(np.log(ratios)))
    assert found["gr-needs-larger-lambda"].measured == pytest.approx(expected)
    assert found["ratio-at-least-half-n"].measured == pytest.approx(expected / 20)
    assert found["crossings-inside-grid"].holds
    runs[1]["gr"]["crossing"] = None  # not measured on one seed: the sanity check fails
    found = {c.name: c for c in pegr_lambda_sweep.claims(_summary({"n": 20}, runs))}
    assert found["crossings-inside-grid"].outcome == "fails"


def test_robustness_claims_compare_drops_from_clean_accuracy() -> None:
    acc = {"gd": [[0.9, 0.8, 0.6], [0.8, 0.7, 0.6], [0.85, 0.8, 0.7]],
           "pegr": [[1.0, 1.0, 0.9], [1.0, 0.9, 0.9], [1.0, 1.0, 0.8]]}
    runs = [{m: {"accuracy": acc[m][s], "train_error": 0.0} for m in acc} for s in range(3)]
    found = {c.name: c for c in pegr_robustness.claims(_summary({}, runs))}
    gd, pegr = np.array(acc["gd"]), np.array(acc["pegr"])
    drops = (gd[:, :1] - gd[:, 1:]).mean(1) - (pegr[:, :1] - pegr[:, 1:]).mean(1)
    assert found["pegr-degrades-more-slowly"].measured == pytest.approx(drops.mean())
    assert found["pegr-more-accurate-under-noise"].measured == pytest.approx(
        (pegr[:, 1:] - gd[:, 1:]).mean())
    assert found["gd-above-chance"].measured == pytest.approx(0.6)  # worst seed and scale


def test_nested_metrics_read_per_seed_and_averaged_with_null_as_nan() -> None:
    summary = _summary({}, [{"a": {"b": [1.0, None]}}, {"a": {"b": [3.0, 4.0]}}])
    np.testing.assert_equal(seed_values(summary, "a", "b"), [[1.0, np.nan], [3.0, 4.0]])
    np.testing.assert_equal(seed_mean(summary, "a", "b"), [2.0, np.nan])
    first = seed_mean(summary, "a", "b", 0)  # a scalar per seed: a float
    assert isinstance(first, float) and first == 2.0


def test_record_and_train_records_before_the_numbered_steps() -> None:
    # x_t = 2^t: recording before steps 0, 2 and after the last (t = steps = 3) gives 1, 4, 8
    state = {"x": 1, "steps": 0}

    def step() -> None:
        state["x"] *= 2
        state["steps"] += 1

    assert record_and_train(3, [3, 0, 2, 7], lambda: state["x"], step) == [1, 4, 8]
    assert state["steps"] == 3
    assert record_and_train(0, [0], lambda: "start", step) == ["start"]
    assert state["steps"] == 3


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("pegr-signal-noise", {"q": 1.0}, "q must be >= 2"),
        ("pegr-signal-noise", {"engine": "jax"}, "engine must be one of"),
        ("pegr-signal-noise", {"lam_pegr": 0.0}, "lam_pegr must be > 0"),
        ("pegr-lambda-sweep", {"per_decade": 3}, "per_decade must be >= 4"),
        ("pegr-lambda-sweep", {"lam_range": (1e-2, 1e-3)}, "lam_range must be two finite"),
        ("pegr-lambda-sweep", {"lam_range": (1.1e-3, 1.5e-3)}, "at least two grid points"),
        ("pegr-robustness", {"noise_scales": ()}, "noise_scales must be increasing"),
        ("pegr-robustness", {"noise_scales": (1.0, 2.0)}, "start at 0"),
        ("pegr-real", {"dataset": "cifar"}, "dataset must be one of"),
        ("pegr-real", {"flip_prob": 1.0}, "flip_prob must be in"),
        ("pegr-real", {"n_train": 12}, "flip_prob must flip at least 5"),
    ],
)
def test_configs_validate_their_fields(name, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(MODULES[name].EXPERIMENT.quick, **change)
