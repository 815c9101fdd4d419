"""The three label-noise experiments run end to end on tiny configs (seconds)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from noisereg.experiments import registry
from noisereg.runner import run_experiment

TINY = {
    "label-noise-lasso": dict(n=15, d=30, k=3, steps=20_000),
    "label-noise-vs-gd": dict(n=15, d=30, k=3, gd_steps=5_000, steps=20_000),
    "label-noise-support": dict(n=30, d=40, steps=20_000, sweep_deltas=(1.0, 6.0, 10.0),
                                gd_steps=5_000),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_experiment_runs_through_the_runner(name, tmp_path) -> None:
    exp = registry.get(name)
    assert exp.paper == "Pillaud-Vivien et al. 2022"
    config = dataclasses.replace(exp.quick, **TINY[name])
    summary = run_experiment(exp, config, [0, 1], tmp_path, preset="quick")
    assert len(summary["claims"]) == 3
    for claim in summary["claims"]:
        assert isinstance(claim["passed"], bool) and claim["expected"]
    assert summary["plots"]
    for name_png in summary["plots"]:
        assert (tmp_path / name / name_png).stat().st_size > 1000
    stored = json.loads((tmp_path / name / "summary.json").read_text())
    assert stored["claims"] == summary["claims"]
    again = run_experiment(exp, config, [0, 1], tmp_path / "again", preset="quick")
    assert again["runs"] == summary["runs"]  # same seeds, same numbers


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("label-noise-lasso", {"init_scales": (0.1,)}, "init_scales"),
        ("label-noise-lasso", {"step_size": 0.0}, "step_size"),
        ("label-noise-vs-gd", {"init_scales": (1.0, 0.1)}, "init_scales"),
        ("label-noise-support", {"max_irrepresentable": 1.5}, "max_irrepresentable"),
        ("label-noise-support", {"sweep_deltas": (2.0,)}, "sweep_deltas"),
    ],
)
def test_configs_validate_their_fields(name, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(registry.get(name).quick, **change)
