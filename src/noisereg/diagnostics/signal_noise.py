"""Signal learning and noise memorization of a :class:`~noisereg.models.PatchCNN` (Cao et al.
2022; Meng, Cao, Zou 2023).

Every filter is decomposed as

    w_{j,r} = w_{j,r}^0 + j gamma_{j,r} mu / ||mu||^2 + sum_i rho_{j,r,i} xi_i / ||xi_i||^2,

``gamma`` (signal learning, about ``j <w_{j,r} - w^0_{j,r}, mu>``) and ``rho`` (noise
memorization, about ``<w_{j,r} - w^0_{j,r}, xi_i>``). Gradient training keeps ``W - W^0`` in the
span of ``mu`` and the ``xi_i``, so the decomposition is exact there; it is computed by least
squares (the projection onto that span otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from noisereg.models.patch_cnn import PatchCNN


@dataclass(frozen=True)
class SignalNoiseCoefficients:
    """``gamma [2, m]`` and ``rho [2, m, n]``; index 0 of the first axis is ``j = +1``."""

    gamma: torch.Tensor
    rho: torch.Tensor

    @property
    def max_gamma(self) -> float:
        return float(self.gamma.max())

    @property
    def max_rho(self) -> float:
        """Largest noise memorization (attained where ``j = y_i``: the filters that fit i)."""
        return float(self.rho.max())

    @property
    def min_rho(self) -> float:
        """Most negative ``rho`` (filters of the other class switched off on ``xi_i``)."""
        return float(self.rho.min())

    @property
    def max_abs_rho(self) -> float:
        return float(self.rho.abs().max())


@torch.no_grad()
def signal_noise_coefficients(model: PatchCNN, mu: torch.Tensor,
                              xi: torch.Tensor) -> SignalNoiseCoefficients:
    """``gamma`` and ``rho`` of ``model``'s filters for the signal ``mu [d]`` and the noise
    patches ``xi [n, d]``.

    Filters moved by ``mu / ||mu||^2`` from their initialisation learned signal
    ``gamma = j = +-1`` and memorized no noise:

    >>> import torch
    >>> from noisereg.data import signal_noise
    >>> from noisereg.diagnostics import signal_noise_coefficients
    >>> from noisereg.models import PatchCNN
    >>> data = signal_noise(n=3, d=8, mu_norm=2.0, sigma_p=1.0)
    >>> model = PatchCNN(d=8, m=2)
    >>> with torch.no_grad():
    ...     _ = model.weight.add_(data.mu / data.mu.square().sum())
    >>> c = signal_noise_coefficients(model, data.mu, data.xi)
    >>> c.gamma.shape, c.rho.shape
    (torch.Size([2, 2]), torch.Size([2, 2, 3]))
    >>> c.gamma.round(decimals=4).tolist(), c.max_abs_rho < 1e-6
    ([[1.0, 1.0], [-1.0, -1.0]], True)
    """
    if not isinstance(model, PatchCNN):
        raise TypeError(f"model must be a PatchCNN, got {type(model).__name__}")
    if not isinstance(mu, torch.Tensor) or mu.shape != (model.d,):
        raise ValueError(f"mu must be a tensor of shape [{model.d}], got "
                         f"{getattr(mu, 'shape', type(mu).__name__)}")
    if not isinstance(xi, torch.Tensor) or xi.dim() != 2 or xi.shape[1] != model.d:
        raise ValueError(f"xi must be a tensor of shape [n, {model.d}], got "
                         f"{getattr(xi, 'shape', type(xi).__name__)}")
    f64 = torch.float64
    mu, xi = mu.to(f64), xi.to(f64)
    basis = torch.cat([(mu / mu.square().sum())[None], xi / xi.square().sum(1, keepdim=True)])
    change = (model.weight - model.initial).to(f64)  # [2m, d]
    m = model.m
    if not torch.isfinite(change).all():  # a diverged run: report it, do not crash LAPACK
        nan = torch.full((2, m), float("nan"), dtype=f64)
        return SignalNoiseCoefficients(gamma=nan, rho=nan[..., None].expand(2, m, len(xi)))
    coeffs = torch.linalg.lstsq(basis.T, change.T, driver="gelsd").solution.T  # [2m, 1 + n]
    sign = torch.tensor([1.0, -1.0], dtype=f64)[:, None]
    return SignalNoiseCoefficients(gamma=sign * coeffs[:, 0].reshape(2, m),
                                   rho=coeffs[:, 1:].reshape(2, m, -1))
