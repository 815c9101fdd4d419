import math

import numpy as np
import pytest

from noisereg.lab.experiments.base import (
    ConfigError,
    apply_overrides,
    config_hash,
    to_jsonable,
)


@pytest.fixture
def toy_config(toy_registry):
    return toy_registry.config


def test_overrides_parse_to_the_field_types(toy_config) -> None:
    cfg = apply_overrides(toy_config(), ["n=7", "scale=2.5", "mode=squared", "widths=1,2,3"])
    assert cfg == toy_config(n=7, scale=2.5, mode="squared", widths=(1, 2, 3))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("bogus=1", r"unknown config key 'bogus'; valid keys: n, scale, mode, widths"),
        ("n=1.5", "n must be of type int"),
        ("scale=abc", "scale must be of type float"),
        ("scale=inf", "scale must be a finite number"),
        ("mode=cubed", "mode must be one of plain, squared"),
        ("widths=", "widths must be a comma-separated list"),
        ("n", "--set takes key=value"),
        ("n=0", r"n must be in \[1, inf\]"),
        ("scale=-1", "scale must be > 0"),
    ],
)
def test_bad_overrides_name_the_key(toy_config, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(toy_config(), [override])


def test_config_hash_depends_on_values_only(toy_config) -> None:
    assert config_hash(toy_config()) == config_hash(toy_config())
    assert config_hash(toy_config()) != config_hash(toy_config(n=3))


def test_to_jsonable_converts_numpy_and_nonfinite() -> None:
    out = to_jsonable({"a": np.float32(1.5), "b": np.arange(3), "c": (1, math.inf)})
    assert out == {"a": 1.5, "b": [0, 1, 2], "c": [1, None]}
    assert to_jsonable(np.float64("nan")) is None
