"""Noise-injection experiments: config validation, divergence, the side-by-side optimizer, the
Lasso support the pgd-lasso claim derives, and the claims read the right metrics (runs:
test_pipeline.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from noisereg.dln import sparse_regression
from noisereg.lab.experiments import (
    pgd_generalization,
    pgd_lasso,
    pgd_nuclear,
    pgd_width,
    variance_explosion,
)
from noisereg.lab.experiments.base import seed_values
from noisereg.lab.experiments.claims import void_verdicts
from noisereg.lab.runner import run_experiment
from noisereg.theory import lasso
from noisereg.theory.noise_injection import two_layer_linear_net


@pytest.mark.parametrize(("module", "change", "message"), [
    (pgd_lasso, {"sigma": 0.0}, "sigma"),
    (pgd_lasso, {"k": 100}, "k"),
    (pgd_lasso, {"max_irrepresentable": 1.5}, "max_irrepresentable"),
    (pgd_nuclear, {"rank": 9}, "rank"),
    (variance_explosion, {"widths": (100, 10)}, "widths"),
    (pgd_width, {"widths": (50,)}, "widths"),
    (pgd_width, {"sigmas": (0.1, 0.05)}, "sigmas"),
    (pgd_width, {"steps": 100}, "steps"),  # fewer than 10 recorded iterates per block
    (pgd_generalization, {"sigmas": ()}, "sigmas"),
    (pgd_generalization, {"momentum": -0.5}, "momentum"),
    (pgd_generalization, {"weight_decay": -1e-4}, "weight_decay"),
    (pgd_generalization, {"wide": ()}, "wide"),
    (pgd_generalization, {"n_test": 774}, "n_test"),  # digits has 1797 images, 1024 train
    (pgd_generalization, {"dataset": "cifar"}, "dataset"),
])
def test_configs_validate_their_fields(module, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(module.EXPERIMENT.quick, **change)


def test_divergence_is_measured_and_voids_the_verdicts(tmp_path) -> None:
    """Global noise with a huge sigma diverges at width 300: NaN (null), not a crash, and the
    failed sanity check voids the experiment's verdicts."""
    exp = pgd_width.EXPERIMENT
    config = dataclasses.replace(exp.quick, sigmas=(0.5, 1.0), steps=200, blocks=10)
    summary = run_experiment(exp, config, [0], tmp_path, preset="quick")
    metrics = summary["runs"][0]["metrics"]
    assert metrics["global"]["steps_done"][1][1] < 200
    assert metrics["global"]["distance"][1][1] is None
    complete = next(c for c in summary["claims"] if c["name"] == "runs-complete")
    assert complete["outcome"] == "fails" and void_verdicts(summary["claims"])


@pytest.mark.parametrize("mode", ["global", "layerwise"])
def test_side_by_side_perturbs_each_net_as_its_own_pgd(mode) -> None:
    """Layer-wise: exactly one layer of every net (the same one), std sqrt(2) sigma of that net;
    global: every tensor with its net's sigma."""
    nets = [two_layer_linear_net(4, w, 1, seed=0) for w in (3, 5, 3)]
    sigmas = [0.1, 0.2, 0.3]
    opt = pgd_width.side_by_side(nets, sigmas, mode, lr=0.1, seed=0)
    owner = {id(p): (k, layer) for k, net in enumerate(nets)
             for layer, p in enumerate((net[0].weight, net[1].weight))}
    layers_seen = set()
    for step in range(40):
        plan = opt.plan(step)
        touched = [(owner[id(p)], std) for _, p, std in plan]
        if mode == "global":
            assert sorted(k for (k, _), _ in touched) == [0, 0, 1, 1, 2, 2]
            assert all(std == pytest.approx(sigmas[k]) for (k, _), std in touched)
        else:
            assert sorted(k for (k, _), _ in touched) == [0, 1, 2]
            assert len({layer for (_, layer), _ in touched}) == 1
            assert all(std == pytest.approx(math.sqrt(2) * sigmas[k]) for (k, _), std in touched)
            layers_seen |= {layer for (_, layer), _ in touched}
    assert mode == "global" or layers_seen == {0, 1}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lasso_of_the_pgd_lasso_design_selects_the_planted_support(seed) -> None:
    """The derivation behind 'selects-support': under the irrepresentable condition the
    noiseless Lasso at 2 sigma^2 has support supp(beta*) (scikit-learn as the oracle)."""
    config = pgd_lasso.EXPERIMENT.quick
    X, y, beta_star = sparse_regression(config.n, config.d, config.k, seed=seed,
                                        max_irrepresentable=config.max_irrepresentable)
    beta = lasso(X, y, 2 * config.sigma**2)
    assert set(np.flatnonzero(np.abs(beta) > 1e-9)) == set(np.flatnonzero(beta_star))
    assert pgd_lasso.off_support_share(beta, beta_star == 0) < 1e-9


def test_off_support_share_and_nested_metrics() -> None:
    beta = np.array([2.0, -1.0, 0.5, -0.5])
    assert pgd_lasso.off_support_share(beta, np.array([False, False, True, True])) == 0.25
    summary = {"runs": [{"metrics": {"a": {"b": [[1, None], [3, 4]]}}},
                        {"metrics": {"a": {"b": [[5, 6], [7, 8]]}}}]}
    values = seed_values(summary, "a", "b")
    assert values.shape == (2, 2, 2) and math.isnan(values[0, 0, 1]) and values[1, 1, 0] == 7


def _summary(config, runs: list[dict]) -> dict:
    return {"config": dataclasses.asdict(config), "runs": [{"metrics": m} for m in runs]}


def test_pgd_width_claims_read_width_and_sigma_by_position() -> None:
    config = pgd_width.EXPERIMENT.quick

    def metrics(shift: float) -> dict:  # [sigma][width]
        return {mode: {"distance": [[a + shift, b + shift], [c + shift, d + shift]],
                       "loss": loss, "steps_done": [[config.steps] * 2] * 2}
                for mode, (a, b, c, d), loss in (
                    ("global", (0.1, 0.7, 0.2, 0.9), [[1.0, 10.0], [1.0, 100.0]]),
                    ("layerwise", (0.3, 0.4, 0.1, 0.2), [[1.0, 1.0], [1.0, 1.0]]))}

    claims = {c.name: c for c in pgd_width.claims(_summary(config, [metrics(0.0),
                                                                    metrics(0.02)]))}
    assert claims["layerwise-reaches"].measured == pytest.approx(0.42)  # worst: max, 2nd seed
    assert claims["global-reaches-narrow"].measured == pytest.approx(0.22)
    assert claims["global-misses-wide-smaller-sigma"].measured == pytest.approx(0.7)
    assert claims["global-misses-wide-larger-sigma"].measured == pytest.approx(0.9)
    assert claims["global-loss-above-wide"].measured == pytest.approx(1.0)  # log10(10), the min
    assert claims["runs-complete"].holds


def test_pgd_generalization_claims_average_and_take_the_worst_sigma() -> None:
    config = pgd_generalization.EXPERIMENT.quick
    steps = config.steps

    def net(gd: float, glob: list[float], layer: list[float], traces: list[float]) -> dict:
        def entry(acc, trace):
            return {"test_acc": acc, "train_acc": 1.0, "trace": trace, "steps_done": steps}
        return {"gd": entry(gd, 10.0),
                "global": {k: [entry(a, t)[k] for a, t in zip(glob, traces)]
                           for k in entry(0, 0)},
                "layerwise": {k: [entry(a, 10.0)[k] for a in layer] for k in entry(0, 0)}}

    run = {"narrow": net(0.90, [0.89, 0.87], [0.91, 0.88], [10.0, 10.0]),
           "wide": net(0.90, [0.85, 0.80], [0.92, 0.89], [100.0, 1000.0])}
    claims = {c.name: c for c in pgd_generalization.claims(_summary(config, [run, run]))}
    assert claims["global-below-layerwise-wide"].measured == pytest.approx(-0.08)
    assert claims["layerwise-not-worse-than-gd-wide"].measured == pytest.approx(-0.01)
    assert claims["layerwise-not-worse-than-gd-narrow"].measured == pytest.approx(-0.02)
    assert claims["trace-global-above-layerwise-wide"].measured == pytest.approx(1.5)
    assert claims["width-deepens-global-deficit"].measured == pytest.approx(-0.065)
    assert claims["gd-fits"].holds and claims["runs-complete"].holds

