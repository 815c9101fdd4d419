"""Fully connected ReLU networks with seeded He initialisation."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from noisereg._seeding import torch_generator
from noisereg._validate import check_int
from noisereg.models.init import he_init_


class MLP(nn.Sequential):
    """``in_features -> widths[0] -> ... -> out_features`` with ReLU between Linear layers.

    Built on the meta device and initialised from ``torch_generator(seed, "init")``:
    the same seed gives the same weights and the global RNG is never touched.

    >>> import torch
    >>> from noisereg.models import MLP
    >>> net = MLP(4, [8, 8], 3, seed=0)
    >>> [tuple(m.weight.shape) for m in net.linears], net(torch.ones(5, 2, 2)).shape
    ([(8, 4), (8, 8), (3, 8)], torch.Size([5, 3]))
    >>> torch.equal(net[0].weight, MLP(4, [8, 8], 3, seed=0)[0].weight)
    True
    """

    def __init__(self, in_features: int, widths: Sequence[int], out_features: int, *,
                 bias: bool = True, seed: int = 0) -> None:
        check_int("in_features", in_features, low=1)
        check_int("out_features", out_features, low=1)
        for w in widths:
            check_int("widths[i]", w, low=1)
        sizes = [in_features, *widths, out_features]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b, bias=bias, device="meta"))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)
        he_init_(self, torch_generator(seed, "init"))

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1))
