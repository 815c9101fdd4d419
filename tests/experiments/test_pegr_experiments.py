"""The four PEGR experiments run end to end on tiny configs (seconds); the closed-form engine of
the signal-noise experiments follows the same trajectory as autograd training."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from noisereg.experiments import registry
from noisereg.runner import run_experiment

SMALL = dict(n=6, d=60, n_test=50, steps=40, eta=0.5, sigma0=0.05)
TINY = {
    "pegr-signal-noise": dict(SMALL, records=5),
    "pegr-lambda-sweep": dict(SMALL, lams=(1e-3, 1e-2)),
    "pegr-robustness": dict(SMALL, noise_scales=(0.0, 1.0)),
    "pegr-real": dict(n_train=40, n_test=40, width=8, steps=6, records=3),
}
CLAIMS = {"pegr-signal-noise": 3, "pegr-lambda-sweep": 1, "pegr-robustness": 2, "pegr-real": 3}


@pytest.mark.parametrize("name", sorted(TINY))
def test_experiment_runs_through_the_runner(name, tmp_path) -> None:
    exp = registry.get(name)
    assert exp.paper == "Meng, Cao, Zou 2023" and exp.description
    config = dataclasses.replace(exp.quick, **TINY[name])
    summary = run_experiment(exp, config, [0, 1], tmp_path, preset="quick")
    assert len(summary["claims"]) == CLAIMS[name]
    for claim in summary["claims"]:
        assert isinstance(claim["passed"], bool) and claim["expected"]
    assert summary["plots"]
    for png in summary["plots"]:
        assert (tmp_path / name / png).stat().st_size > 1000
    stored = json.loads((tmp_path / name / "summary.json").read_text())
    assert stored["claims"] == summary["claims"]
    again = run_experiment(exp, config, [0, 1], tmp_path / "again", preset="quick")
    assert again["runs"] == summary["runs"]  # same seeds, same numbers


def test_closed_form_engine_follows_autograd_training() -> None:
    exp = registry.get("pegr-signal-noise")
    config = dataclasses.replace(exp.quick, **TINY["pegr-signal-noise"], lam_pegr=0.05,
                                 lam_gr=0.05)
    fast = exp.run(config, 3)
    slow = exp.run(dataclasses.replace(config, engine="autograd"), 3)
    assert fast.keys() == slow.keys()
    for key in fast:
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-7, atol=1e-9, err_msg=key,
                                   equal_nan=False)
    assert fast["pegr_max_gamma"] > 0  # the run moved


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("pegr-signal-noise", {"q": 1.0}, "q must be >= 2"),
        ("pegr-signal-noise", {"engine": "jax"}, "engine must be one of"),
        ("pegr-signal-noise", {"lam_pegr": 0.0}, "lam_pegr must be > 0"),
        ("pegr-lambda-sweep", {"lams": (1e-2, 1e-3)}, "lams must be increasing"),
        ("pegr-robustness", {"noise_scales": ()}, "noise_scales must be increasing"),
        ("pegr-real", {"dataset": "cifar"}, "dataset must be one of"),
        ("pegr-real", {"flip_probs": (1.0,)}, "flip_probs must be in"),
    ],
)
def test_configs_validate_their_fields(name, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(registry.get(name).quick, **change)
