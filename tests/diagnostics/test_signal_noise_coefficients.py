"""Signal learning gamma and noise memorization rho recovered from filters built with known
coefficients."""

from __future__ import annotations

import math

import pytest
import torch

from noisereg.data import signal_noise
from noisereg.diagnostics import signal_noise_coefficients
from noisereg.models import PatchCNN


def test_recovers_the_coefficients_of_the_decomposition() -> None:
    data = signal_noise(6, 40, 2.0, 1.0, seed=1, dtype=torch.float64)
    model = PatchCNN(40, 3, 3, sigma0=0.1, seed=0, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    gamma = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    rho = torch.randn(2, 3, 6, generator=gen, dtype=torch.float64)
    j = torch.tensor([1.0, -1.0], dtype=torch.float64)[:, None, None]
    # w_jr = w0_jr + j gamma_jr mu/||mu||^2 + sum_i rho_jri xi_i/||xi_i||^2
    change = (j * gamma[..., None] * data.mu / data.mu.square().sum()
              + torch.einsum("jri,id->jrd", rho, data.xi / data.xi.square().sum(1, keepdim=True)))
    with torch.no_grad():
        model.weight.add_(change.reshape(6, 40))
    coeffs = signal_noise_coefficients(model, data.mu, data.xi)
    torch.testing.assert_close(coeffs.gamma, gamma, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(coeffs.rho, rho, rtol=1e-10, atol=1e-12)
    assert coeffs.max_gamma == pytest.approx(float(gamma.max()))
    assert coeffs.max_rho == pytest.approx(float(rho.max()))
    assert coeffs.min_rho == pytest.approx(float(rho.min()))
    assert coeffs.max_abs_rho == pytest.approx(float(rho.abs().max()))


def test_untrained_model_has_zero_coefficients_and_diverged_one_nan() -> None:
    data = signal_noise(4, 20, 1.0, 1.0, seed=0)
    model = PatchCNN(20, 2, 3, seed=0)
    coeffs = signal_noise_coefficients(model, data.mu, data.xi)
    assert float(coeffs.gamma.abs().max()) == 0 and float(coeffs.rho.abs().max()) == 0
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    coeffs = signal_noise_coefficients(model, data.mu, data.xi)
    assert math.isnan(coeffs.max_gamma) and coeffs.rho.shape == (2, 2, 4)


def test_bad_input() -> None:
    data = signal_noise(4, 20, 1.0, 1.0, seed=0)
    model = PatchCNN(20, 2, 3, seed=0)
    with pytest.raises(TypeError, match="model must be a PatchCNN"):
        signal_noise_coefficients(torch.nn.Linear(2, 2), data.mu, data.xi)
    with pytest.raises(ValueError, match=r"mu must be a tensor of shape \[20\]"):
        signal_noise_coefficients(model, data.mu[:5], data.xi)
    with pytest.raises(ValueError, match=r"xi must be a tensor of shape \[n, 20\]"):
        signal_noise_coefficients(model, data.mu, data.xi[:, :5])
