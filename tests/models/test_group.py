"""GroupNet against the explicit sum over groups sum_j v_j X_j w_j."""

import pytest
import torch

from noisereg.models.group import GroupNet


def test_forward_is_the_sum_over_groups() -> None:
    gen = torch.Generator().manual_seed(0)
    net = GroupNet(3, 2, init_scale=0.7).double()
    with torch.no_grad():
        net.v.copy_(torch.randn(3, generator=gen, dtype=torch.float64))
        net.w.copy_(torch.randn(3, 2, generator=gen, dtype=torch.float64))
    X = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    expected = sum(net.v[j] * X[:, 2 * j:2 * j + 2] @ net.w[j] for j in range(3))
    torch.testing.assert_close(net(X), expected)
    torch.testing.assert_close(net.beta[2:4], net.v[1] * net.w[1])


def test_initialization_and_bad_input() -> None:
    net = GroupNet(2, 3, init_scale=0.5)
    assert torch.equal(net.beta, torch.full((6,), 0.25))
    with pytest.raises(ValueError, match="init_scale must be > 0"):
        GroupNet(2, 3, init_scale=0.0)
    with pytest.raises(ValueError, match="groups must be in"):
        GroupNet(0, 3)
