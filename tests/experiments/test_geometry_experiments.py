"""The three function-geometry experiments run end to end on tiny configs (seconds)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from noisereg.experiments import registry
from noisereg.experiments._geometry import pair_indices
from noisereg.runner import run_experiment

TINY = {
    "geometry-init": (dict(dataset="digits", widths=(8, 16), depths=(1, 2), pairs=6, points=9),
                      5),
    "geometry-training": (dict(dataset="digits", n_train=64, n_test=32, widths=(8, 16),
                               epochs=2, batch_size=32, pairs=6, points=9, profile_pairs=2), 5),
    "geometry-regularizers": (dict(dataset="digits", n_train=32, n_test=32, widths=(8,),
                                   steps=3, pairs=6, points=9), 5),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_experiment_runs_through_the_runner(name, tmp_path) -> None:
    exp = registry.get(name)
    assert exp.paper == "Kubo et al. 2019"
    change, n_claims = TINY[name]
    config = dataclasses.replace(exp.quick, **change)
    summary = run_experiment(exp, config, [0, 1], tmp_path, preset="quick")
    assert len(summary["claims"]) == n_claims
    for claim in summary["claims"]:
        assert isinstance(claim["passed"], bool) and claim["expected"]
    assert summary["plots"]
    for png in summary["plots"]:
        assert (tmp_path / name / png).stat().st_size > 1000
    stored = json.loads((tmp_path / name / "summary.json").read_text())
    assert stored["claims"] == summary["claims"]
    again = run_experiment(exp, config, [1], tmp_path / "again", preset="quick")
    assert again["runs"] == summary["runs"][1:]  # same seed, same numbers


def test_pairs_are_distinct_and_seeded() -> None:
    first, second = pair_indices(5, 200, seed=3)
    assert bool((first != second).all())
    assert int(torch.cat([first, second]).max()) < 5
    again = pair_indices(5, 200, seed=3)
    assert torch.equal(again[0], first) and torch.equal(again[1], second)
    with pytest.raises(ValueError, match="2 examples"):
        pair_indices(1, 3, seed=0)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("geometry-init", {"widths": (64,)}, "widths"),
        ("geometry-init", {"depths": (2, 1)}, "depths"),
        ("geometry-init", {"points": 2}, "points"),
        ("geometry-training", {"widths": (256, 64)}, "widths"),
        ("geometry-training", {"lr": 0.0}, "lr"),
        ("geometry-training", {"profile_pairs": 1000}, "profile_pairs"),
        ("geometry-regularizers", {"flip": 1.0}, "flip"),
        ("geometry-regularizers", {"sigma": -0.1}, "sigma"),
        ("geometry-regularizers", {"widths": ()}, "widths"),
    ],
)
def test_configs_validate_their_fields(name, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(registry.get(name).quick, **change)
