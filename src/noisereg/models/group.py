"""Group network: a linear predictor whose groups are each a scalar times a vector.

beta_{G_j} = v_j w_j (v_j scalar, w_j in R^k), f(X) = X beta = sum_j v_j X_j w_j, the model on
which global noise injection induces a group Lasso (Orvieto et al. 2023). Groups are the
contiguous column blocks [j k, (j + 1) k). Initialised deterministically at v = w = alpha.
"""

from __future__ import annotations

import torch
from torch import nn

from noisereg._validate import check_int, check_positive


class GroupNet(nn.Module):
    """f(X) = X @ beta with beta_{G_j} = v_j w_j; parameters ``v`` (groups,) and ``w``
    (groups, k).

    >>> import torch
    >>> from noisereg.models import GroupNet
    >>> net = GroupNet(groups=2, k=3, init_scale=0.5)
    >>> net.beta.tolist()  # v_j w_j = 0.25 in 2 groups of 3
    [0.25, 0.25, 0.25, 0.25, 0.25, 0.25]
    >>> net(torch.ones(4, 6)).tolist()
    [1.5, 1.5, 1.5, 1.5]
    """

    def __init__(self, groups: int, k: int, init_scale: float = 0.5) -> None:
        super().__init__()
        check_int("groups", groups, low=1)
        check_int("k", k, low=1)
        alpha = check_positive("init_scale", init_scale)
        self.v = nn.Parameter(torch.full((groups,), alpha))
        self.w = nn.Parameter(torch.full((groups, k), alpha))

    @property
    def beta(self) -> torch.Tensor:
        """The linear predictor, groups laid out contiguously: (v_j w_j)_j flattened."""
        return (self.v[:, None] * self.w).flatten()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X @ self.beta

    def extra_repr(self) -> str:
        groups, k = self.w.shape
        return f"groups={groups}, k={k}"
