"""Every registered experiment runs end to end on a tiny config (seconds): claims well formed,
plots written, the stored summary equal to the returned one, and the same seeds give the same
numbers. Whether an experiment is right is established by the library tests against closed
forms, scikit-learn and reference implementations."""

import dataclasses
import json

import pytest

from noisereg.lab.experiments import registry
from noisereg.lab.experiments.claims import OUTCOMES
from noisereg.lab.runner import run_experiment

PEGR_SMALL = dict(n=6, d=60, n_test=50, steps=40, eta=0.5, sigma0=0.05)
# name -> config changes that make it tiny
TINY = {
    "label-noise-lasso": dict(n=15, d=30, k=3, steps=20_000),
    "label-noise-vs-gd": dict(n=15, d=30, k=3, gd_steps=5_000, steps=20_000),
    "label-noise-support": dict(n=30, d=40, steps=20_000, sweep_deltas=(1.0, 6.0, 10.0),
                                 gd_steps=5_000),
    "label-noise-convergence": dict(n=30, d=40, horizon=100.0, bias_horizon=50.0,
                                    trace_points=30),
    "pgd-lasso": dict(n=20, d=40, k=2, steps=2000, explicit_steps=200),
    "pgd-nuclear": dict(steps=2000),
    "pgd-group-lasso": dict(n=12, groups=5, k=3, active=2, steps=400),
    "anti-pgd-flat-minima": dict(valley_steps=200, n=10, d=20, k=2, sparse_steps=200,
                                 n_train=64, n_test=32, width=8, image_steps=20, probes=2),
    "variance-explosion": dict(widths=(10, 50), samples=200, grad_samples=50),
    "pgd-width": dict(widths=(10, 30), steps=400, blocks=10),
    "pgd-generalization": dict(dataset="digits", n_train=200, n_test=100, narrow=(8,),
                                wide=(16,), steps=20, sigmas=(0.05,), probes=3),
    "pegr-signal-noise": dict(PEGR_SMALL, records=5),
    "pegr-lambda-sweep": dict(PEGR_SMALL, lam_range=(1e-3, 1e-2), refine=2),
    "pegr-robustness": dict(PEGR_SMALL, noise_scales=(0.0, 1.0)),
    "pegr-phase-diagram": dict(ns=(3, 6), mu_norms=(1.0, 8.0), d=60, n_test=50, steps=30,
                               eta=0.5, sigma0=0.05),
    "pegr-real": dict(n_train=40, n_test=40, width=8, steps=6, records=3),
    "geometry-init": dict(dataset="digits", widths=(8, 16), depths=(1, 2), pool=40, pairs=6,
                          points=9),
    "geometry-training": dict(dataset="digits", n_train=64, n_test=32, widths=(8, 16),
                               epochs=2, batch_size=32, pairs=6, points=9, profile_pairs=2),
    "geometry-regularizers": dict(dataset="digits", n_train=32, n_test=32, widths=(8,),
                                   steps=3, pairs=6, points=9),
}


def test_every_experiment_has_a_tiny_config() -> None:
    assert set(TINY) == set(registry.experiments())


@pytest.mark.parametrize("name", sorted(TINY))
def test_experiment_runs_through_the_runner(name, tmp_path) -> None:
    exp = registry.get(name)
    assert exp.paper and exp.claim and exp.description
    config = dataclasses.replace(exp.quick, **TINY[name])
    summary = run_experiment(exp, config, [0, 1], tmp_path, preset="quick")
    assert [c["name"] for c in summary["claims"]] == [s.name for s in exp.claim_specs]
    specs = {spec.name: spec for spec in exp.claim_specs}
    for claim in summary["claims"]:
        assert claim["outcome"] in OUTCOMES and claim["expected"] and claim["statement"]
        assert claim["source"] == specs[claim["name"]].source
    assert 1 <= len(summary["plots"]) <= 3
    for png in summary["plots"]:
        assert (tmp_path / name / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads((tmp_path / name / "summary.json").read_text())
    assert stored == summary
    again = run_experiment(exp, config, [1], tmp_path / "again", preset="quick")
    assert again["runs"] == summary["runs"][1:]  # same seed, same numbers
