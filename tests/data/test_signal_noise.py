"""The signal-noise data model of Cao et al. (2022): structure and statistics of the draws."""

from __future__ import annotations

import math

import pytest
import torch

from noisereg.data import SignalNoise, signal_noise


def test_patches_labels_and_orthogonality() -> None:
    data = signal_noise(300, 50, 2.5, 0.7, flip_prob=0.2, seed=3, dtype=torch.float64)
    assert isinstance(data, SignalNoise) and (data.n, data.d) == (300, 50)
    assert data.x.shape == (300, 2, 50) and data.x.dtype == torch.float64
    assert set(data.y.tolist()) == {-1.0, 1.0} and set(data.clean_y.tolist()) == {-1.0, 1.0}
    assert float(data.mu.norm()) == pytest.approx(2.5)
    # signal patch first: the clean label times mu; noise patch second, orthogonal to mu
    torch.testing.assert_close(data.x[:, 0], data.clean_y[:, None] * data.mu)
    torch.testing.assert_close(data.x[:, 1], data.xi)
    assert float((data.xi @ data.mu).abs().max()) < 1e-12
    # observed labels are the clean ones flipped exactly where `flipped` says
    torch.testing.assert_close(data.y, torch.where(data.flipped, -data.clean_y, data.clean_y))


def test_statistics() -> None:
    n, d, sigma_p, p = 4000, 30, 1.5, 0.1
    data = signal_noise(n, d, 1.0, sigma_p, flip_prob=p, seed=0, dtype=torch.float64)
    # xi ~ N(0, sigma_p^2 (I - mu mu^T/||mu||^2)): E||xi||^2 = sigma_p^2 (d - 1)
    mean_sq = float(data.xi.square().sum(1).mean())
    sd = sigma_p**2 * math.sqrt(2 * (d - 1) / n)
    assert abs(mean_sq - sigma_p**2 * (d - 1)) < 5 * sd
    cov = data.xi[:, 1:].T @ data.xi[:, 1:] / n  # isotropic on the complement of mu = e_1
    torch.testing.assert_close(cov, sigma_p**2 * torch.eye(d - 1, dtype=torch.float64),
                               atol=0.25, rtol=0)
    flips = float(data.flipped.double().mean())
    assert abs(flips - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert abs(float(data.clean_y.mean())) < 5 / math.sqrt(n)  # Rademacher labels


def test_seeded_and_global_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    a, b, c = (signal_noise(20, 10, 1.0, 1.0, 0.3, seed=s) for s in (5, 5, 6))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)
    assert torch.equal(a.mu, c.mu)  # the signal is shared by every seed (train and test sets)
    assert a.x.dtype == torch.float32
    assert not signal_noise(50, 10, 1.0, 1.0, 0.0, seed=1).flipped.any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n": 0}, "n must be in"), ({"d": 1}, "d must be in"), ({"mu_norm": 0.0}, "mu_norm must"),
     ({"sigma_p": -1.0}, "sigma_p must be >= 0"), ({"flip_prob": 1.5}, "flip_prob must be in"),
     ({"dtype": torch.int64}, "dtype must be a floating")],
)
def test_bad_input(kwargs: dict, message: str) -> None:
    args = {"n": 5, "d": 10, "mu_norm": 1.0, "sigma_p": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        signal_noise(**args)
