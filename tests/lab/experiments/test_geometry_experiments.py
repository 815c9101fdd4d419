"""Function-geometry experiments: pairings against scikit-learn, the straightness readings
against closed forms on quadratics, the bound of "almost straight" on its parabola, the claims'
reductions on constructed per-seed values, config validation (runs: test_pipeline.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from noisereg._seeding import torch_generator
from noisereg.data.images import DATASETS, _raw
from noisereg.lab.experiments import geometry_init, geometry_regularizers, geometry_training
from noisereg.lab.experiments._geometry import (
    DATASET_SIZES,
    PAIRINGS,
    STRAIGHT_CHORD,
    STRAIGHT_SAGITTA,
    draw_pairs,
    log_slope,
    seed_values,
    straightness,
)

f64 = torch.float64


def _data(n: int = 60, d: int = 5, classes: int = 4, seed: int = 0):
    gen = torch_generator(seed, "data")
    return (torch.randn(n, d, generator=gen, dtype=f64),
            torch.randint(classes, (n,), generator=gen))


# ----------------------------------------------------------------------------- pairings


def test_pairings_share_seeded_distinct_anchors() -> None:
    x, y = _data()
    drawn = {p: draw_pairs(x, y, 20, seed=3, pairing=p) for p in PAIRINGS}
    anchors = drawn["random"][0]
    assert len(set(anchors.tolist())) == 20
    for first, second in drawn.values():
        assert torch.equal(first, anchors) and bool((first != second).all())
    again = draw_pairs(x, y, 20, seed=3, pairing="random")
    assert torch.equal(again[1], drawn["random"][1])
    first, second = drawn["class"]
    assert torch.equal(y[first], y[second])


def test_neighbour_is_the_nearest_other_sample_as_sklearn_finds_it() -> None:
    x, y = _data(n=80, d=7, seed=1)
    first, second = draw_pairs(x, y, 30, seed=0, pairing="neighbour")
    _, index = NearestNeighbors(n_neighbors=2).fit(x.numpy()).kneighbors(x[first].numpy())
    assert second.tolist() == index[:, 1].tolist()  # index[:, 0] is the anchor itself


def test_a_nearest_neighbour_is_never_an_exact_copy() -> None:
    x, y = _data(n=30)
    x[1] = x[0]  # an exact copy: a segment of length 0
    first, second = draw_pairs(x, y, 30, seed=0, pairing="neighbour")
    assert bool(((x[first] - x[second]).abs().sum(1) > 0).all())


def test_pairs_refuse_bad_input() -> None:
    x, y = _data(n=10)
    with pytest.raises(ValueError, match="pairing"):
        draw_pairs(x, y, 3, seed=0, pairing="nearest")
    with pytest.raises(ValueError, match="pairs"):
        draw_pairs(x, y, 11, seed=0)
    with pytest.raises(ValueError, match="pairs"):  # no sample has a classmate
        draw_pairs(x[:4], torch.arange(4), 1, seed=0)


# ----------------------------------------------------------------------------- readings


def test_readings_match_closed_forms_on_a_quadratic() -> None:
    """f(x) = x^T A x / 2: g(t) = f(x_a) + (r - a) t + a t^2 with a = v^T A v / 2,
    r = v^T A x_a + a, grad f = A x."""
    gen = torch_generator(5, "data")
    m = torch.randn(4, 4, generator=gen, dtype=f64)
    a_mat = (m + m.T) / 2
    xa, xb = (torch.randn(6, 4, generator=gen, dtype=f64) for _ in range(2))
    points = 65
    found = straightness(lambda x: 0.5 * ((x @ a_mat) * x).sum(-1, keepdim=True), xa, xb,
                         points=points, patterns=False)

    A, XA, XB = a_mat.numpy(), xa.numpy(), xb.numpy()
    v = XB - XA
    length = np.linalg.norm(v, axis=1)
    a = 0.5 * np.einsum("pi,ij,pj->p", v, A, v)
    r = np.einsum("pi,ij,pj->p", v, A, XA) + a
    gap = abs(a) * math.sqrt((points + 1) / (3 * (points - 1))) / length  # RMS of a (2t - 1)
    sagitta = abs(a) / 4  # at t = 1/2, on the grid
    ga, gb = XA @ A, XB @ A
    rms = lambda z: math.sqrt(np.mean(np.square(z)))  # noqa: E731
    grad_rms = math.sqrt(np.mean(np.concatenate([(ga**2).sum(1), (gb**2).sum(1)])))
    expected = {
        "chord": rms(gap) / rms(r / length),
        "gradient": rms(gap) / grad_rms,
        "cosine": np.mean((ga * gb).sum(1) / np.linalg.norm(ga, axis=1)
                          / np.linalg.norm(gb, axis=1)),
        "sagitta": rms(sagitta) / rms(r),
        "gap": gap.mean(),
        "deflection": np.mean(2 * abs(a) / length),  # g' is monotone: TV = |g'(1) - g'(0)|
    }
    assert set(found) == set(expected)
    for name, value in expected.items():
        assert found[name] == pytest.approx(value, rel=1e-9), name


def test_affine_network_reads_perfectly_straight() -> None:
    gen = torch_generator(2, "data")
    w, b = torch.randn(3, 5, generator=gen, dtype=f64), torch.randn(3, generator=gen, dtype=f64)
    xa, xb = (torch.randn(4, 5, generator=gen, dtype=f64) for _ in range(2))
    found = straightness(lambda x: x @ w.T + b, xa, xb, points=9, patterns=False)
    for name in ("chord", "gradient", "sagitta", "gap", "deflection"):
        assert abs(found[name]) < 1e-12, name
    assert found["cosine"] == pytest.approx(1.0, abs=1e-12)


def test_the_bound_is_the_parabola_with_a_sagitta_of_a_tenth_of_its_rise() -> None:
    """g(t) = r t + a t (t - 1) with |a| = 0.4 |r| on a fine grid reads the two bounds."""
    r, a = 1.7, 0.4 * 1.7
    f = lambda x: r * x + a * x * (x - 1)  # noqa: E731
    xa, xb = torch.zeros(1, 1, dtype=f64), torch.ones(1, 1, dtype=f64)
    found = straightness(f, xa, xb, points=2049, patterns=False)
    assert found["chord"] == pytest.approx(STRAIGHT_CHORD, rel=1e-3)
    assert found["sagitta"] == pytest.approx(STRAIGHT_SAGITTA, rel=1e-9)


# ----------------------------------------------------------------------------- helpers


def test_log_slope_is_the_least_squares_exponent() -> None:
    x = np.array([64.0, 256.0, 1024.0])
    y = np.random.default_rng(0).uniform(0.5, 2.0, size=(4, 3))
    expected = [np.polyfit(np.log(x), np.log(row), 1)[0] for row in y]
    assert np.allclose(log_slope(x, y), expected)
    assert np.isnan(log_slope(x, np.array([1.0, 0.0, 2.0])))


def test_seed_values_reads_nested_metrics_and_null_as_nan() -> None:
    summary = {"runs": [{"metrics": {"a": {"b": [1.0, None]}}},
                        {"metrics": {"a": {"b": [3.0, 4.0]}}}]}
    values = seed_values(summary, "a", "b")
    assert values.shape == (2, 2) and np.isnan(values[0, 1]) and values[1, 0] == 3.0


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_sizes_are_the_shipped_sets(name: str) -> None:
    assert DATASET_SIZES[name] == len(_raw(name)[0])


# ----------------------------------------------------------------------------- claims


def _summary(config, metrics_per_seed) -> dict:
    return {"config": dataclasses.asdict(config), "seeds": list(range(len(metrics_per_seed))),
            "runs": [{"seed": i, "metrics": m} for i, m in enumerate(metrics_per_seed)]}


def test_init_claims_reduce_the_grid_as_stated() -> None:
    """chord = c width^b depth, flips = k width: the width exponent is b at every depth, the
    depth ratio is depths[-1] / depths[0], the flips exponent is exactly 1."""
    config = geometry_init.Config(dataset="digits", widths=(8, 32, 128), depths=(1, 3),
                                  pool=40, pairs=4, points=9)
    widths, depths = np.array(config.widths, float), np.array(config.depths, float)[:, None]
    runs = []
    for b, c in ((-0.1, 0.5), (0.1, 0.4), (0.0, 0.45)):
        grid = {"chord": (c * widths**b * depths).tolist(),
                "neuron_flips": (2.0 * widths * depths).tolist(),
                **{name: np.ones((2, 3)).tolist() for name in ("gradient", "cosine", "sagitta")}}
        runs.append({p: grid for p in PAIRINGS})
    found = {c.name: c for c in geometry_init.claims(_summary(config, runs))}
    assert found["gap-persists-with-width"].measured == pytest.approx(0.0, abs=1e-12)
    assert found["gap-grows-with-depth"].measured == pytest.approx(3.0)
    assert found["regions-linear-in-neurons"].measured == pytest.approx(0.0, abs=1e-12)
    worst = np.mean([3 * c * max(widths**b) for b, c in ((-0.1, 0.5), (0.1, 0.4), (0.0, 0.45))])
    assert found["straight-at-init"].measured == pytest.approx(worst)


def test_regularizer_claims_are_paired_differences_to_gd() -> None:
    config = geometry_regularizers.Config()
    runs = []
    for shift in (0.03, 0.04, 0.05):
        run = {m: {"train": {"chord": 0.2 + (shift if m == "pegr" else 0.0),
                             "cosine": 0.9, "gradient": 0.1, "sagitta": 0.05},
                   "train_accuracy": 1.0} for m in geometry_regularizers.METHODS}
        runs.append(run)
    found = {c.name: c for c in geometry_regularizers.claims(_summary(config, runs))}
    assert found["pegr-straightens"].measured == pytest.approx(0.04)
    assert found["pegr-straightens"].verdict == "no"  # every seed above GD
    assert found["label-flips-straightens"].measured == pytest.approx(0.0)


def test_training_claims_compare_the_last_epoch_with_epoch_zero() -> None:
    config = geometry_training.Config(widths=(8, 16))
    runs = []
    for drop in (0.3, 0.4, 0.5):
        chord = [[0.6, 0.6 - drop / 2, 0.6 - drop], [0.7, 0.7, 0.7 - drop]]
        curves = {split: {name: chord for name in ("chord", "gradient", "cosine", "sagitta")}
                  for split in ("train", "test")}
        runs.append({"train_accuracy": [0.95, 1.0], "curves": curves})
    found = {c.name: c for c in geometry_training.claims(_summary(config, runs))}
    assert found["sgd-straightens"].measured == pytest.approx(-0.4)
    assert "not almost straight" in found["sgd-straightens"].note
    assert found["straight-after-sgd"].measured == pytest.approx(np.mean([0.4, 0.3, 0.2]))
    assert found["trained-fits"].measured == pytest.approx(0.95)


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("module", "change", "message"),
    [
        (geometry_init, {"widths": (64,)}, "widths"),
        (geometry_init, {"depths": (2, 1)}, "depths"),
        (geometry_init, {"points": 2}, "points"),
        (geometry_init, {"dataset": "digits", "pool": 1797}, "pool"),
        (geometry_init, {"pool": 40, "pairs": 41}, "pairs"),
        (geometry_training, {"widths": (256, 64)}, "widths"),
        (geometry_training, {"lr": 0.0}, "lr"),
        (geometry_training, {"profile_pairs": 1000}, "profile_pairs"),
        (geometry_training, {"n_test": 40}, "pairs"),
        (geometry_regularizers, {"flip": 1.0}, "flip"),
        (geometry_regularizers, {"sigma": -0.1}, "sigma"),
        (geometry_regularizers, {"widths": ()}, "widths"),
        (geometry_regularizers, {"n_train": 20}, "pairs"),
    ],
)
def test_configs_validate_their_fields(module, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(module.EXPERIMENT.quick, **change)
