"""PEGR experiments: the closed-form engine of the signal-noise experiments follows the same
trajectory as autograd training; config validation (end-to-end runs: test_pipeline.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from noisereg.experiments import registry

SMALL = dict(n=6, d=60, n_test=50, steps=40, eta=0.5, sigma0=0.05)




def test_closed_form_engine_follows_autograd_training() -> None:
    exp = registry.get("pegr-signal-noise")
    config = dataclasses.replace(exp.quick, **SMALL, records=5, lam_pegr=0.05,
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
