"""The experiment contract.

An experiment is one module in :mod:`noisereg.lab.experiments` that defines ``EXPERIMENT``, an
:class:`Experiment` holding

* ``config``: a dataclass type; ``quick`` and ``full`` are two instances of it (the presets),
  and its ``__post_init__`` validates the fields (raise ``ValueError`` naming the field);
* ``run(config, seed) -> metrics``: one seed, every random draw from generators of
  ``noisereg._seeding`` keyed by (``seed``, purpose, indices);
  the metrics are JSON values (numbers, strings, lists, dicts) and identical for identical inputs;
* ``claim_specs``: the :class:`~noisereg.lab.experiments.claims.ClaimSpec` of every claim, each with
  its source (paper, derived, exploratory, sanity), threshold and the threshold's origin, fixed
  before any result is seen;
* ``claims(summary) -> list[Claim]``: each spec decided on the per-seed values of the summary
  (:meth:`ClaimSpec.decide`);
* ``plot(summary, outdir) -> list[str]``: PNG files written into ``outdir`` (names returned).

The registry (:mod:`noisereg.lab.experiments.registry`) discovers the modules; the runner
(:mod:`noisereg.lab.runner`) runs the seeds, stores the results and builds the summary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noisereg.lab.experiments.claims import Claim, ClaimSpec

Metrics = dict[str, Any]
Summary = dict[str, Any]

@dataclass(frozen=True)
class Experiment:
    name: str
    paper: str
    claim: str
    config: type
    quick: Any
    full: Any
    run: Callable[[Any, int], Metrics]
    claim_specs: tuple[ClaimSpec, ...]
    claims: Callable[[Summary], list[Claim]]
    plot: Callable[[Summary, Path], list[str]]
    seeds_quick: int = 3
    seeds_full: int = 5
    description: str = ""
    # Bumped whenever ``run`` gives other metrics for the same config and seed (other draws,
    # another layout): stored runs of an older version are then run again, never resumed.
    version: int = 1

    def __post_init__(self) -> None:
        names = [spec.name for spec in self.claim_specs]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name!r}: claim_specs must be non-empty with "
                             "unique names")

    def digest(self, config: Any) -> str:
        """The key of this experiment's runs of ``config``: its hash and the version."""
        return f"{config_hash(config)}-v{self.version}"

    def decided(self, summary: Summary) -> list[Claim]:
        """``claims(summary)``, checked against the specs fixed before the results were seen."""
        specs = {spec.name: spec for spec in self.claim_specs}
        claims = self.claims(summary)
        for claim in claims:
            spec = specs.get(claim.name)
            if spec is None or (claim.source, claim.expected, claim.statement,
                                claim.basis) != (spec.source, spec.expected, spec.statement,
                                                 spec.basis):
                raise RuntimeError(f"experiment {self.name!r}: claim {claim.name!r} does not "
                                   "match a declared ClaimSpec")
        return claims

    def preset(self, name: str) -> Any:
        if name not in ("quick", "full"):
            raise ValueError(f"preset must be 'quick' or 'full', got {name!r}")
        return self.quick if name == "quick" else self.full

    def default_seeds(self, preset: str) -> int:
        return self.seeds_quick if preset == "quick" else self.seeds_full


# ----------------------------------------------------------------------------- configs


class ConfigError(ValueError):
    """A ``--set`` override that names no field or does not parse to the field's type."""


def config_to_dict(config: Any) -> dict[str, Any]:
    return to_jsonable(dataclasses.asdict(config))


def config_hash(config: Any) -> str:
    text = json.dumps(config_to_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _parse_scalar(text: str, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        for choice in choices:
            if str(choice) == text:
                return choice
        raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}; got {text!r}")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if text.lower() == "none" and len(args) < len(typing.get_args(tp)):
            return None
        return _parse_scalar(text, args[0], key)
    if tp is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(f"{key} must be a boolean (true/false); got {text!r}")
    if tp in (int, float, str):
        try:
            value = tp(text)
        except ValueError:
            raise ConfigError(f"{key} must be of type {tp.__name__}; got {text!r}") from None
        if tp is float and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number; got {text!r}")
        return value
    raise ConfigError(f"{key}: fields of type {tp} cannot be set from the command line")


def parse_value(text: str, tp: Any, key: str) -> Any:
    """Parse ``text`` to the annotated type ``tp``; tuples are comma separated."""
    if typing.get_origin(tp) in (tuple, list):
        item = typing.get_args(tp)[0]
        parts = [p for p in text.split(",") if p.strip()]
        if not parts:
            raise ConfigError(f"{key} must be a comma-separated list; got {text!r}")
        return tuple(_parse_scalar(p.strip(), item, key) for p in parts)
    return _parse_scalar(text, tp, key)


def apply_overrides(config: Any, overrides: Sequence[str]) -> Any:
    """Return ``config`` with ``key=value`` overrides, type-checked against the dataclass."""
    hints = typing.get_type_hints(type(config))
    fields = [f.name for f in dataclasses.fields(config)]
    changes: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"--set takes key=value, got {item!r}")
        if key not in hints or key not in fields:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(fields)}")
        changes[key] = parse_value(text.strip(), hints[key], key)
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as err:
        raise ConfigError(str(err)) from None


# ----------------------------------------------------------------------------- summaries


def to_jsonable(value: Any) -> Any:
    """Convert numpy / torch scalars and arrays, tuples and paths to plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return to_jsonable(value.item())
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # torch tensors
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no inf/nan: null, which every reader takes as NaN (seed_values)
    if isinstance(value, Path):
        return str(value)
    return value


def seed_values(summary: Summary, *path: Any) -> np.ndarray:
    """The metric ``metrics[path[0]][path[1]]...`` of every seed, stacked (seeds first); null (a
    non-finite value) reads as NaN."""
    values = []
    for run in summary["runs"]:
        value = run["metrics"]
        for key in path:
            value = value[key]
        values.append(value)
    return np.asarray(values, dtype=float)  # None (stored null) becomes NaN


def seed_mean(summary: Summary, *path: Any) -> float | np.ndarray:
    """Mean over the seeds of the metric at ``path`` (elementwise for list metrics)."""
    values = seed_values(summary, *path).mean(axis=0)
    return float(values) if np.ndim(values) == 0 else values
