"""Seeded random generators: every draw comes from an explicit generator, never the global RNG."""

from __future__ import annotations

import torch


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(int(seed))
