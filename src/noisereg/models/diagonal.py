"""Diagonal linear network: a linear predictor with a quadratic parametrization.

beta = u*u - v*v (signed, ``"u2-v2"``) or beta = u*u (non-negative, ``"u2"``), elementwise;
f(X) = X beta. Initialised deterministically at u = v = alpha (so beta = 0 when signed,
beta = alpha^2 otherwise): alpha, the initialization scale, decides which interpolator gradient
descent reaches (Woodworth et al. 2020) but not the Lasso label noise finds (Pillaud-Vivien et
al. 2022).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from noisereg._validate import check_choice, check_int, check_positive


class DiagonalLinearNet(nn.Module):
    """f(X) = X @ beta with beta = u*u - v*v (or u*u); parameters ``u`` (and ``v``) of size d.

    >>> import torch
    >>> from noisereg.models import DiagonalLinearNet
    >>> DiagonalLinearNet(3, init_scale=0.5).beta.tolist()  # 0.5^2 - 0.5^2
    [0.0, 0.0, 0.0]
    >>> net = DiagonalLinearNet(3, parametrization="u2", init_scale=0.5)
    >>> net.beta.tolist(), net(torch.eye(3)).tolist()
    ([0.25, 0.25, 0.25], [0.25, 0.25, 0.25])
    """

    def __init__(self, d: int, parametrization: Literal["u2-v2", "u2"] = "u2-v2",
                 init_scale: float = 0.1) -> None:
        super().__init__()
        check_int("d", d, low=1)
        self.parametrization = check_choice("parametrization", parametrization, ("u2-v2", "u2"))
        alpha = check_positive("init_scale", init_scale)
        self.u = nn.Parameter(torch.full((d,), alpha))
        if parametrization == "u2-v2":
            self.v = nn.Parameter(torch.full((d,), alpha))
        else:
            self.register_parameter("v", None)

    @property
    def beta(self) -> torch.Tensor:
        """The linear predictor u*u - v*v (or u*u)."""
        return self.u * self.u if self.v is None else self.u * self.u - self.v * self.v

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X @ self.beta

    def extra_repr(self) -> str:
        return f"d={self.u.numel()}, parametrization={self.parametrization!r}"
