"""A small regression problem shared by the optimizer tests (float64, seeded, no global RNG)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from noisereg.models.mlp import MLP


class Problem:
    """ReLU MLP 5 -> 7 -> 6 -> 3 on 16 fixed samples, squared loss."""

    def __init__(self, seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        gen = torch.Generator().manual_seed(100 + seed)
        self.x = torch.randn(16, 5, generator=gen, dtype=dtype)
        self.y = torch.randn(16, 3, generator=gen, dtype=dtype)
        self.dtype = dtype
        self.seed = seed

    def model(self) -> nn.Module:
        return MLP(5, [7, 6], 3, seed=self.seed).to(self.dtype)

    def closure(self, model: nn.Module, opt: torch.optim.Optimizer) -> Callable[[], torch.Tensor]:
        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = (model(self.x) - self.y).pow(2).mean()
            loss.backward()
            return loss
        return closure

    @staticmethod
    def params(model: nn.Module) -> list[torch.Tensor]:
        return [p.detach().clone() for p in model.parameters()]

    @staticmethod
    def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
        """Bitwise equality of two parameter lists."""
        return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.fixture
def problem() -> Problem:
    return Problem()


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every optimizer test runs on tiny tensors."""
