"""Seeded initialisation: modules are built on the meta device (no global RNG draw), then
materialised and initialised from an explicit ``torch.Generator``."""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def he_init_(module: nn.Module, gen: torch.Generator) -> nn.Module:
    """Materialise ``module`` on the CPU and draw every Linear / Conv weight from He's normal
    N(0, 2 / fan_in) with ``gen``; biases start at zero, norm layers at (1, 0).

    >>> from torch import nn
    >>> from noisereg.models import he_init_, torch_generator
    >>> layer = he_init_(nn.Linear(1000, 100, device="meta"), torch_generator(0, "init"))
    >>> layer.weight.device.type, layer.bias.abs().max().item()
    ('cpu', 0.0)
    >>> abs(layer.weight.var().item() * 1000 / 2 - 1) < 0.05  # variance 2 / fan_in
    True
    """
    if any(p.is_meta for p in module.parameters()):
        module.to_empty(device="cpu")
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            m.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=gen)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.weight is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()
        elif isinstance(m, nn.Embedding):
            m.weight.normal_(0.0, 1.0, generator=gen)
    return module
