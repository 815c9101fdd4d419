"""Noise-injection experiments: config validation, divergence (runs: test_pipeline.py)."""

from __future__ import annotations

import dataclasses

import pytest

from noisereg.experiments import registry
from noisereg.runner import run_experiment


@pytest.mark.parametrize(("name", "change", "message"), [
    ("pgd-lasso", {"sigma": 0.0}, "sigma"),
    ("pgd-lasso", {"k": 100}, "k"),
    ("pgd-nuclear", {"rank": 9}, "rank"),
    ("variance-explosion", {"widths": (100, 10)}, "widths"),
    ("pgd-width", {"widths": (50,)}, "widths"),
    ("pgd-generalization", {"sigmas": ()}, "sigmas"),
    ("pgd-generalization", {"momentum": -0.5}, "momentum"),
])
def test_configs_validate_their_fields(name, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(registry.get(name).quick, **change)


def test_divergence_is_reported_not_raised(tmp_path) -> None:
    """Global noise with a huge sigma diverges at width 300: measured as inf, not a crash."""
    exp = registry.get("pgd-width")
    config = dataclasses.replace(exp.quick, sigma=1.0, steps=200, blocks=10)
    summary = run_experiment(exp, config, [0], tmp_path, preset="quick")
    metrics = summary["runs"][0]["metrics"]
    assert metrics["steps_done_global_300"] < 200
    assert metrics["mean_dist_global_300"] == "inf"  # JSON keeps inf as a string
