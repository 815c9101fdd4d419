"""Function-geometry experiments: seeded pairs, config validation (runs: test_pipeline.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from noisereg.experiments import registry
from noisereg.experiments._geometry import pair_indices


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
