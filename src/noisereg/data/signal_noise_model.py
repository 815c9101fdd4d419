"""The signal-noise data model of Cao, Chen, Belkin, Gu (NeurIPS 2022), with optional label
flipping (Kou et al. 2023).

Each example has two patches ``x = [x_1, x_2]`` in ``R^{2 x d}``: the signal patch ``y~ mu`` and
the noise patch ``xi ~ N(0, sigma_p^2 (I - mu mu^T / ||mu||^2))``, where ``y~`` is the clean
Rademacher label, ``mu`` the signal vector and ``sigma_p`` the noise scale. The observed label
``y`` is ``y~`` flipped with probability ``flip_prob``.

Choices: the patch order is fixed (signal first, noise second); the two-layer CNN of the paper
sums its filters over both patches, so the order does not change its output, and a fixed order
keeps the patches easy to find. ``mu = mu_norm * e_1`` for every seed, so train and test sets
drawn with different seeds share the signal (the model and the Gaussian noise are rotation
invariant, so the direction does not matter).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from noisereg._seeding import torch_generator
from noisereg._validate import check_fraction, check_int, check_nonnegative, check_positive


@dataclass(frozen=True)
class SignalNoise:
    """``x [n, 2, d]`` (signal patch first), labels ``y`` and ``clean_y`` in {-1, +1} ``[n]``,
    the signal ``mu [d]``, the noise patches ``xi [n, d]`` and the ``flipped`` mask ``[n]``.

    >>> from noisereg.data import signal_noise
    >>> data = signal_noise(n=4, d=6, mu_norm=2.0, sigma_p=1.0)
    >>> data.n, data.d, data.mu.tolist()
    (4, 6, [2.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    """

    x: torch.Tensor
    y: torch.Tensor
    clean_y: torch.Tensor
    mu: torch.Tensor
    xi: torch.Tensor
    flipped: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def d(self) -> int:
        return int(self.x.shape[2])


def signal_noise(n: int, d: int, mu_norm: float, sigma_p: float, flip_prob: float = 0.0,
                 seed: int = 0, *, dtype: torch.dtype = torch.float32) -> SignalNoise:
    """Draw ``n`` examples of the signal-noise model in dimension ``d`` (see the module doc).

    The signal patch is ``y~ mu``, the noise is orthogonal to ``mu``, and ``flip_prob = 1``
    flips every label:

    >>> import torch
    >>> from noisereg.data import signal_noise
    >>> data = signal_noise(n=5, d=6, mu_norm=2.0, sigma_p=1.0, flip_prob=1.0)
    >>> data.x.shape, torch.equal(data.x[:, 0], data.clean_y[:, None] * data.mu)
    (torch.Size([5, 2, 6]), True)
    >>> torch.equal(data.x[:, 1], data.xi), (data.xi @ data.mu).abs().max().item()
    (True, 0.0)
    >>> torch.equal(data.y, -data.clean_y), data.flipped.all().item()
    (True, True)
    """
    check_int("n", n, low=1)
    check_int("d", d, low=2)
    check_positive("mu_norm", mu_norm)
    check_nonnegative("sigma_p", sigma_p)
    check_fraction("flip_prob", flip_prob)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    gen = torch_generator(seed, "data")
    f64 = torch.float64
    clean_y = 2.0 * torch.randint(0, 2, (n,), generator=gen, dtype=f64) - 1.0
    flipped = torch.rand(n, generator=gen, dtype=f64) < flip_prob
    y = torch.where(flipped, -clean_y, clean_y)
    mu = torch.zeros(d, dtype=f64)
    mu[0] = mu_norm
    xi = sigma_p * torch.randn(n, d, generator=gen, dtype=f64)
    xi[:, 0] = 0.0  # the projection I - mu mu^T / ||mu||^2 removes the e_1 component
    x = torch.stack([clean_y[:, None] * mu, xi], dim=1)
    return SignalNoise(x.to(dtype), y.to(dtype), clean_y.to(dtype), mu.to(dtype), xi.to(dtype),
                       flipped)
