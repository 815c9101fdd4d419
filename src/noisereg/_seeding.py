"""Seeded random generators: every draw comes from an explicit generator, never the global RNG."""

from __future__ import annotations

import torch


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``.

    >>> import torch
    >>> from noisereg.models import generator
    >>> generator(7).initial_seed()
    7
    >>> torch.equal(torch.rand(3, generator=generator(7)), torch.rand(3, generator=generator(7)))
    True
    """
    return torch.Generator().manual_seed(int(seed))
