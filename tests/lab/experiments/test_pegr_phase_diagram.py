"""pegr-phase-diagram: the closed-form engine follows autograd training on a small grid; the phase
boundary against a root finder and an exact case; the per-cell rule against scipy's Student t
interval; the cell counts of the claims on an exact small case; config validation (end-to-end
run: test_pipeline.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import optimize, stats

from noisereg.lab.experiments import pegr_phase_diagram as pd

TINY = dict(ns=(3, 6), mu_norms=(1.0, 8.0), d=60, n_test=50, steps=30, eta=0.5, sigma0=0.05,
            lam=0.05)


def test_closed_form_engine_follows_autograd_training() -> None:
    config = dataclasses.replace(pd.EXPERIMENT.quick, **TINY)
    fast = pd.run(config, 2)
    slow = pd.run(dataclasses.replace(config, engine="autograd"), 2)
    for method in pd.METHODS:
        for key in ("test_error", "train_error"):
            np.testing.assert_allclose(fast[method][key], slow[method][key], atol=1e-12,
                                       err_msg=f"{method}/{key}")
    assert np.ptp(fast["pegr"]["test_error"]) > 0  # the cells differ: the run moved


def test_snr_ratio_exact_case() -> None:
    # n = 8, ||mu|| = 2, sigma_p sqrt(d) = 4, q = 3: 8 * 8 / 64
    assert pd.snr_ratio(8, 2.0, 1.0, 16, 3.0) == pytest.approx(1.0, rel=1e-15)
    assert pd.snr_ratio(2, 3.0, 0.5, 36, 2.0) == pytest.approx(2 * 9 / 9, rel=1e-15)


@pytest.mark.parametrize("n, c, sigma_p, d, q", [(4, 1.0, 1.0, 400, 3.0), (27, 0.3, 2.0, 2000,
                                                                             3.0),
                                                 (10, 5.0, 0.7, 50, 2.5)])
def test_boundary_mu_is_the_root_of_the_ratio(n, c, sigma_p, d, q) -> None:
    root = optimize.brentq(lambda mu: pd.snr_ratio(n, mu, sigma_p, d, q) - c, 1e-6, 1e6,
                           xtol=1e-14, rtol=1e-14)
    assert pd.boundary_mu(n, c, sigma_p, d, q) == pytest.approx(root, rel=1e-10)


def test_small_cells_follow_the_student_interval() -> None:
    errors = np.zeros((3, 2, 3))
    errors[:, 0, 1] = [0.05, 0.06, 0.04]  # tight, below 0.1
    errors[:, 0, 2] = [0.0, 0.0, 0.25]  # mean below 0.1, interval not
    errors[:, 1, 0] = [0.0, np.nan, 0.0]  # a diverged seed
    errors[:, 1, 1] = [0.5, 0.5, 0.5]
    errors[:, 1, 2] = [0.09, 0.09, 0.09]
    expected = np.zeros((2, 3), dtype=bool)
    for i in range(2):
        for j in range(3):
            values = errors[:, i, j]
            if np.isfinite(values).all():
                if values.std() == 0:
                    expected[i, j] = values[0] < pd.SMALL
                else:
                    _, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(),
                                              scale=stats.sem(values))
                    expected[i, j] = hi < pd.SMALL
    np.testing.assert_array_equal(pd.small_cells(errors), expected)
    assert expected.tolist() == [[True, True, False], [False, False, True]]
    assert not pd.small_cells(errors[:1]).any()  # one seed: no interval, nothing small


def _summary(gd: np.ndarray, pegr: np.ndarray, gr: np.ndarray) -> dict:
    runs = [{"metrics": {"gd": {"test_error": gd[s].tolist(), "train_error": [[0.0] * 2] * 2},
                         "pegr": {"test_error": pegr[s].tolist(),
                                  "train_error": [[0.0] * 2] * 2},
                         "gr": {"test_error": gr[s].tolist(), "train_error": [[0.0] * 2] * 2}}}
            for s in range(len(gd))]
    return {"runs": runs}


def test_claims_count_cells() -> None:
    half = np.full((3, 2, 2), 0.5)
    gd = half.copy()
    gd[:, 1, 1] = 0.0  # benign corner small
    pegr = np.zeros((3, 2, 2))
    pegr[:, 0, 0] = 0.5  # small everywhere but the harmful corner
    gr = half.copy()
    gr[:, 0, 1] = 0.0  # small only where GD is not
    decided = {c.name: c for c in pd.claims(_summary(gd, pegr, gr))}
    assert decided["pegr-small-contains-gd"].measured == 0 and decided[
        "pegr-small-contains-gd"].holds
    assert decided["pegr-small-more-cells"].measured == 2
    assert decided["gr-small-more-cells"].measured == 0 and not decided[
        "gr-small-more-cells"].holds
    assert decided["gd-harmful-corner"].holds and decided["gd-benign-corner"].holds
    assert decided["no-divergence"].holds and decided["gd-fits-training-set"].holds
    pegr[0, 0, 1] = np.nan  # a diverged PEGR run: its cell is not small, the sanity check fails
    decided = {c.name: c for c in pd.claims(_summary(gd, pegr, gr))}
    assert decided["pegr-small-more-cells"].measured == 1
    assert not decided["no-divergence"].holds
    assert decided["gd-fits-training-set"].holds


@pytest.mark.parametrize("change, match", [
    (dict(ns=(8, 4)), "ns must be strictly increasing"),
    (dict(ns=(4,)), "ns must hold at least two"),
    (dict(mu_norms=(2.0, -1.0)), "mu_norms must be > 0"),
    (dict(lam=0.0), "lam must be > 0"),
    (dict(ns=(4, 20_000)), "ns must be"),
    (dict(ns=(4, 8000), n_test=10_000, d=5000), "n_test"),  # memory, at the largest n
    (dict(boundary_c=1e6), "the grid must straddle the boundary"),
    (dict(eta=-1.0), "eta must be > 0"),
])
def test_config_rejects_bad_values(change, match) -> None:
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(pd.EXPERIMENT.quick, **change)
