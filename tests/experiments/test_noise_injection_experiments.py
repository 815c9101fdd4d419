"""The five noise-injection experiments run end to end on tiny configs (seconds)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from noisereg.experiments import registry
from noisereg.runner import run_experiment

TINY = {
    "pgd-lasso": (dict(n=20, d=10, k=2, steps=2000, explicit_steps=200), 3),
    "pgd-nuclear": (dict(steps=2000), 2),
    "variance-explosion": (dict(widths=(10, 50), samples=200, grad_samples=50), 4),
    "pgd-width": (dict(widths=(10, 30), steps=400, blocks=10), 2),
    "pgd-generalization": (dict(dataset="digits", n_train=200, n_test=100, widths=(16,),
                                steps=20, sigmas=(0.05,), probes=3), 1),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_experiment_runs_through_the_runner(name, tmp_path) -> None:
    exp = registry.get(name)
    assert exp.paper == "Orvieto et al. 2023" and exp.description
    change, count = TINY[name]
    config = dataclasses.replace(exp.quick, **change)
    summary = run_experiment(exp, config, [0, 1], tmp_path, preset="quick")
    assert len(summary["claims"]) == count
    for claim in summary["claims"]:
        assert isinstance(claim["passed"], bool) and claim["expected"]
    assert 1 <= len(summary["plots"]) <= 3
    for png in summary["plots"]:
        assert (tmp_path / name / png).stat().st_size > 1000
    stored = json.loads((tmp_path / name / "summary.json").read_text())
    assert stored["claims"] == summary["claims"]
    again = run_experiment(exp, config, [0, 1], tmp_path / "again", preset="quick")
    assert again["runs"] == summary["runs"]  # same seeds, same numbers


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
