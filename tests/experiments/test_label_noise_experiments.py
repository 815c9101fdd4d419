"""Label-noise experiments: config validation (end-to-end runs: test_pipeline.py)."""

from __future__ import annotations

import dataclasses

import pytest

from noisereg.experiments import registry


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
