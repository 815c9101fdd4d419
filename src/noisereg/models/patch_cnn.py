"""The two-layer CNN of the signal-noise model (Cao et al. 2022; Meng, Cao, Zou 2023), and a
closed form of its regularized objective's gradient (a fast path for the PEGR experiments).

    f(W, x) = F_{+1}(W_{+1}, x) - F_{-1}(W_{-1}, x),
    F_j = (1/m) sum_{r=1..m} sum_{p=1,2} sigma(<w_{j,r}, x_p>),   sigma(z) = max(0, z)^q,

with ``w_{j,r} ~ N(0, sigma_0^2 I)`` at initialisation (``sigma_0`` = ``sigma0``). Only the filters
``W`` train; the second layer is fixed to ``+-1/m``. The filters are one ``nn.Linear(d, 2m)``
without bias applied to both patches (rows ``0..m-1`` are ``j = +1``, rows ``m..2m-1`` are
``j = -1``), so the ghost backend of :mod:`noisereg.gradreg` covers the model (3-D Linear input).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noisereg._seeding import torch_generator
from noisereg._validate import check_choice, check_finite, check_int, check_nonnegative


class PatchCNN(nn.Module):
    """Two-layer CNN on two patches with ReLU^q activation and a fixed second layer.

    ``weight`` is the trainable filter matrix ``[2m, d]``; ``initial`` keeps ``W^0`` (a
    buffer) for the signal / noise decomposition of
    :func:`noisereg.diagnostics.signal_noise_coefficients`.

    With equal filters for both classes the two halves cancel: f = 0.

    >>> import torch
    >>> from noisereg.models import PatchCNN
    >>> model = PatchCNN(d=5, m=2, q=3.0)
    >>> model.weight.shape, model(torch.ones(4, 2, 5)).shape
    (torch.Size([4, 5]), torch.Size([4]))
    >>> with torch.no_grad():
    ...     _ = model.weight.fill_(1.0)
    >>> model(torch.ones(4, 2, 5)).tolist()
    [0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, d: int, m: int, q: float = 3.0, sigma0: float = 0.01, seed: int = 0,
                 *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_int("d", d, low=1)
        check_int("m", m, low=1)
        if check_finite("q", q) < 2:
            raise ValueError(f"q must be >= 2 (sigma = ReLU^q needs a second derivative), got {q}")
        check_nonnegative("sigma0", sigma0)
        self.d, self.m, self.q = d, m, float(q)
        self.filters = nn.Linear(d, 2 * m, bias=False, device="meta", dtype=dtype)
        self.filters.to_empty(device="cpu")
        with torch.no_grad():
            self.filters.weight.normal_(0.0, sigma0, generator=torch_generator(seed, "init"))
        self.register_buffer("initial", self.filters.weight.detach().clone())
        self.register_buffer("second", torch.cat([torch.full((m,), 1.0 / m, dtype=dtype),
                                                  torch.full((m,), -1.0 / m, dtype=dtype)]))

    @property
    def weight(self) -> nn.Parameter:
        return self.filters.weight

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[1] != 2 or x.shape[2] != self.d:
            raise ValueError(f"x must have shape [n, 2, {self.d}], got {tuple(x.shape)}")
        return torch.relu(self.filters(x)).pow(self.q).sum(1) @ self.second


def logistic_losses(f: Tensor, y: Tensor) -> Tensor:
    """Per-example logistic losses ``l_i = log(1 + exp(-y_i f_i))`` for labels in {-1, +1}."""
    return F.softplus(-y * f)


def closed_form_objective(pre: Tensor, y: Tensor, gram: Tensor, second: Tensor, q: float,
                          lam: float | Tensor = 0.0,
                          penalty: Literal["pegr", "gr"] = "pegr") -> tuple[Tensor, Tensor]:
    """Value and gradient of ``L_S + lam * P`` for :class:`PatchCNN` with logistic loss.

    Inputs: pre-activations ``pre[..., k, i, p] = <w_k, x_{i,p}>`` ``[..., 2m, n, 2]`` (leading
    dims batch independent runs, e.g. a sweep over ``lam``, a tensor of shape ``[...]``), labels
    ``y [n]``, the patch Gram matrix ``gram[i, p, j, p'] = <x_{i,p}, x_{j,p'}>`` ``[n, 2, n, 2]``
    and the second layer ``second [2m]`` (``a_k = j/m``). Every gradient lies in the span of the
    patches: ``grad_W = coef.reshape(..., 2m, 2n) @ x.reshape(2n, d)``. Returns ``(value [...],
    coef [..., 2m, n, 2])``.

    With ``l'_i, l''_i`` the first two derivatives of the logistic loss in ``f_i``,
    ``c_{k,i,p} = l'_i a_k sigma'(pre_{k,i,p})`` (so ``grad_{w_k} l_i = sum_p c_{k,i,p} x_{i,p}``)
    and ``v = K c`` (PEGR: each example's own 2 x 2 block of the Gram ``K``; GR: ``K / n``),

        P = (1/n) sum c . v,
        dP/dw_k = (2/n) sum_{i,p} [l''_i S_i a_k sigma'_{k,i,p}
                                   + l'_i a_k sigma''_{k,i,p} v_{k,i,p}] x_{i,p},
        S_i = sum_{k,p} a_k sigma'_{k,i,p} v_{k,i,p}.
    """
    check_choice("penalty", penalty, ("pegr", "gr"))
    n = y.shape[0]
    a = second[:, None, None]
    # few, small ops (sums and matmuls, no einsum): this runs 20,000 times per experiment
    relu = pre.clamp_min(0.0)
    r = relu.pow(q - 2)
    if q == 2:  # 0^0 = 1: sigma'' = 2 only where pre > 0
        r = r * (pre > 0)
    a_d1 = a * (q * r * relu)  # a_k sigma'
    margin = y * (second @ (r * relu * relu).sum(-1))
    value = F.softplus(-margin).mean(-1)
    sig = torch.sigmoid(-margin)
    l1 = (-y * sig)[..., None, :, None]  # [..., 1, n, 1]
    c = l1 * a_d1
    coef = c / n
    if not isinstance(lam, Tensor) and lam == 0:
        return value, coef
    if penalty == "pegr":
        blocks = torch.diagonal(gram, dim1=0, dim2=2).permute(2, 0, 1)  # [n, 2, 2]: K_i
        v = (blocks * c.unsqueeze(-2)).sum(-1)
    else:
        v = (c.reshape(*c.shape[:-2], 2 * n) @ gram.reshape(2 * n, 2 * n).T).reshape(c.shape) / n
    l2_s = sig * (1 - sig) * (a_d1 * v).sum((-3, -1))  # l''_i S_i
    dp = l2_s[..., None, :, None] * a_d1 + (q * (q - 1)) * l1 * a * r * v
    lam = torch.as_tensor(lam, dtype=pre.dtype)
    return (value + lam * (c * v).sum((-3, -2, -1)) / n,
            coef + lam[..., None, None, None] * (2.0 / n) * dp)
