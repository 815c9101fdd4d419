r"""Explicit regularizers of noise injection (Orvieto, Raj, Kersting, Bach, AISTATS 2023).

PGD with noise std sigma (per entry) minimises, in expectation, the smoothed loss
R_sigma(w) = E_eps L(w + sigma eps), eps ~ N(0, I). For a squared loss
L = ||y - Phi(w)||^2 / (2n) its second-order part is the effective objective

    R_eff(w) = L(w) + sigma^2 / (2n) ||D Phi(w)||_F^2      (the trace of the NTK Gram matrix)

(plus sigma^2/2 DL(Phi) D^2Phi[I], which vanishes at interpolation and where the Laplacian of
Phi in w is zero, as for the three models below). Layer-wise noise (std sqrt(M) sigma on one of
M groups) has the same sigma^2 term. The models below have exact closed forms; X is (n, d) with
one sample per row.

* diagonal net beta = u*u - v*v: R_eff = L + 2 sigma^2 diag(X^T X/n)^T (u^2 + v^2), whose minimum
  over factorizations is the weighted Lasso with penalties 2 sigma^2 (X^T X/n)_ii; exactly
  R_sigma = R_eff + 2 sigma^4 ||X||_F^2 / n (global noise);
* two-layer linear net Phi = X W1^T W2^T: R_eff = L + sigma^2/(2n) [d2 ||X W1^T||_F^2
  + ||W2||_F^2 ||X||_F^2], minimised over factorizations by a nuclear-norm problem; exactly
  R_sigma = R_eff + sigma^4 d1 d2 ||X||_F^2 / (2n) for global noise, R_sigma = R_eff for
  layer-wise noise on (W1, W2) with std sqrt(2) sigma;
* group net Phi = sum_j v_j X_j w_j: R_eff = L + sigma^2/(2n) sum_j (||X_j w_j||^2
  + v_j^2 ||X_j||_F^2), equivalent to the group Lasso (sigma^2/n) sum_j ||X_j||_F ||X_j beta_j||.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from noisereg._seeding import torch_generator
from noisereg._validate import check_choice, check_int, check_nonnegative

Mode = Literal["global", "layerwise"]


def _sq_loss(residual: torch.Tensor) -> torch.Tensor:
    return residual.pow(2).sum() / (2 * residual.shape[0])


def _check_design(X: torch.Tensor, name: str = "X") -> torch.Tensor:
    if not isinstance(X, torch.Tensor) or X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"{name} must be a 2-d tensor (n, d) with n >= 1")
    return X


# ----------------------------------------------------------------------------- diagonal net


def lasso_weights(X: torch.Tensor, sigma: float) -> torch.Tensor:
    """The weighted-Lasso penalties of PGD on u*u - v*v: 2 sigma^2 (X^T X / n)_ii.

    >>> import torch
    >>> from noisereg.theory import lasso_weights
    >>> lasso_weights(torch.tensor([[1.0, 0.0], [3.0, 4.0]]), sigma=0.5).tolist()  # (5, 8) / 2
    [2.5, 4.0]
    """
    X = _check_design(X)
    return 2 * check_nonnegative("sigma", sigma) ** 2 * X.pow(2).mean(0)


def diagonal_net_smoothed_loss(X: torch.Tensor, y: torch.Tensor, u: torch.Tensor,
                               v: torch.Tensor, sigma: float, mode: Mode = "global",
                               exact: bool = True) -> torch.Tensor:
    """R_sigma of the diagonal net beta = u*u - v*v under squared loss, exactly.

    global (std sigma on u and v): R_eff + 2 sigma^4 ||X||_F^2 / n;
    layerwise (u or v, std sqrt(2) sigma): R_eff + 4 sigma^4 ||X||_F^2/n + 2 sigma^4 ||X 1||^2/n.
    ``exact=False`` returns R_eff = L + 2 sigma^2 diag(X^T X/n)^T (u^2 + v^2).

    The closed form against a Monte-Carlo estimate of the same expectation:

    >>> import torch
    >>> from noisereg.diagnostics import smoothed_loss
    >>> from noisereg.models import DiagonalLinearNet
    >>> from noisereg.theory import diagonal_net_smoothed_loss
    >>> X, y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([1.0, 2.0])
    >>> net = DiagonalLinearNet(2, init_scale=0.5)
    >>> exact = diagonal_net_smoothed_loss(X, y, net.u, net.v, sigma=0.1)
    >>> est = smoothed_loss(net, lambda out, t: 0.5 * ((out - t) ** 2).mean(), X, y, sigma=0.1,
    ...                     samples=2000)
    >>> abs(est.value - exact.item()) < 4 * est.stderr
    True
    >>> r_eff = diagonal_net_smoothed_loss(X, y, net.u, net.v, sigma=0.1, exact=False)
    >>> round((exact - r_eff).item(), 6)  # 2 sigma^4 ||X||_F^2 / n = 2e-4 * 26 / 2
    0.0026
    """
    X = _check_design(X)
    check_choice("mode", mode, ("global", "layerwise"))
    n = X.shape[0]
    s2 = check_nonnegative("sigma", sigma) ** 2
    r_eff = _sq_loss(y - X @ (u * u - v * v)) + lasso_weights(X, sigma) @ (u * u + v * v)
    if not exact:
        return r_eff
    fro2 = X.pow(2).sum()
    if mode == "global":
        return r_eff + 2 * s2**2 * fro2 / n
    return r_eff + 4 * s2**2 * fro2 / n + 2 * s2**2 * X.sum(1).pow(2).sum() / n


# ----------------------------------------------------------------------------- linear net


def linear_net_smoothed_loss(X: torch.Tensor, Y: torch.Tensor, W1: torch.Tensor,
                             W2: torch.Tensor, sigma: float, mode: Mode = "global",
                             exact: bool = True) -> torch.Tensor:
    """R_sigma of Phi = X W1^T W2^T (W1: d1 x d0, W2: d2 x d1) under L = ||Y - Phi||_F^2/(2n).

    R_eff = L + sigma^2/(2n) [d2 ||X W1^T||_F^2 + ||W2||_F^2 ||X||_F^2]; exactly, global noise adds
    sigma^4 d1 d2 ||X||_F^2 / (2n) (it grows with the width d1) and layer-wise noise (one of the
    two layers, std sqrt(2) sigma) adds nothing. ``exact=False`` returns R_eff.

    >>> import torch
    >>> from noisereg.theory import linear_net_smoothed_loss, two_layer_linear_net
    >>> net = two_layer_linear_net(2, 3, 1)  # d0, d1, d2
    >>> W1, W2 = net[0].weight, net[1].weight
    >>> X, Y = torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.ones(2, 1)
    >>> extra = (linear_net_smoothed_loss(X, Y, W1, W2, sigma=0.5)
    ...          - linear_net_smoothed_loss(X, Y, W1, W2, sigma=0.5, mode="layerwise"))
    >>> round(extra.item(), 4)  # sigma^4 d1 d2 ||X||_F^2 / (2n) = 0.0625 * 3 * 26 / 4
    1.2188
    """
    X = _check_design(X)
    check_choice("mode", mode, ("global", "layerwise"))
    n = X.shape[0]
    d1, d2 = W1.shape[0], W2.shape[0]
    s2 = check_nonnegative("sigma", sigma) ** 2
    fro2 = X.pow(2).sum()
    hidden = X @ W1.T
    r_eff = _sq_loss(Y - hidden @ W2.T) + s2 / (2 * n) * (d2 * hidden.pow(2).sum()
                                                         + W2.pow(2).sum() * fro2)
    if exact and mode == "global":
        return r_eff + s2**2 * d1 * d2 * fro2 / (2 * n)
    return r_eff


def singular_value_threshold(A: torch.Tensor, tau: float) -> torch.Tensor:
    """argmin_Z 1/2 ||A - Z||_F^2 + tau ||Z||_*: U max(S - tau, 0) V^T.

    >>> import torch
    >>> from noisereg.theory import singular_value_threshold
    >>> Z = singular_value_threshold(torch.diag(torch.tensor([3.0, 1.0])), tau=2.0)
    >>> torch.linalg.svdvals(Z).tolist()  # (3 - 2, max(1 - 2, 0))
    [1.0, 0.0]
    """
    tau = check_nonnegative("tau", tau)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U @ torch.diag((S - tau).clamp_min(0)) @ Vh


def nuclear_norm_objective(X: torch.Tensor, Y: torch.Tensor, M: torch.Tensor,
                           sigma: float) -> torch.Tensor:
    """(1/2n) ||Y - X M^T||_F^2 + (sigma^2/n) sqrt(d2) ||X||_F ||X M^T||_*, M = W2 W1 (d2 x d0):
    the minimum of R_eff of the two-layer linear net over the factorizations of M.

    >>> import torch
    >>> from noisereg.theory import nuclear_norm_objective
    >>> X, Y = torch.eye(2), torch.tensor([[3.0, 4.0]]).T  # d0 = n = 2, d2 = 1
    >>> nuclear_norm_objective(X, Y, torch.zeros(1, 2), sigma=1.0).item()  # ||Y||^2 / 4
    6.25
    >>> M = torch.tensor([[3.0, 4.0]])  # fits Y; penalty (1/2) sqrt(1) sqrt(2) * 5
    >>> round(nuclear_norm_objective(X, Y, M, sigma=1.0).item(), 4)
    3.5355
    """
    X = _check_design(X)
    n, d2 = X.shape[0], M.shape[0]
    s2 = check_nonnegative("sigma", sigma) ** 2
    Z = X @ M.T
    return _sq_loss(Y - Z) + s2 / n * math.sqrt(d2) * X.norm() * torch.linalg.matrix_norm(Z, "nuc")


def nuclear_norm_solution(X: torch.Tensor, Y: torch.Tensor, sigma: float) -> torch.Tensor:
    """argmin_M of :func:`nuclear_norm_objective` (d2 x d0): with P the projector on the column
    space of X, X M^T = SVT(P Y, sigma^2 sqrt(d2) ||X||_F), then M^T = X^+ (X M^T).

    At sigma = 0 it is least squares; for sigma > 0 no nearby M does better:

    >>> import torch
    >>> from noisereg.theory import nuclear_norm_objective, nuclear_norm_solution
    >>> X = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
    >>> Y = torch.tensor([[1.0, 2.0], [0.0, 1.0], [2.0, 2.0]], dtype=torch.float64)
    >>> torch.allclose(nuclear_norm_solution(X, Y, 0.0).T, torch.linalg.lstsq(X, Y).solution)
    True
    >>> M = nuclear_norm_solution(X, Y, sigma=0.5)
    >>> best = nuclear_norm_objective(X, Y, M, sigma=0.5)
    >>> nudges = 1e-3 * torch.eye(4, dtype=torch.float64).reshape(4, 2, 2)
    >>> all(nuclear_norm_objective(X, Y, M + s * e, sigma=0.5) > best
    ...     for e in nudges for s in (1, -1))
    True
    """
    X = _check_design(X)
    s2 = check_nonnegative("sigma", sigma) ** 2
    pinv = torch.linalg.pinv(X)
    Z = singular_value_threshold(X @ (pinv @ Y), s2 * math.sqrt(Y.shape[1]) * float(X.norm()))
    return (pinv @ Z).T


def two_layer_linear_net(d0: int, d1: int, d2: int, *, seed: int = 0,
                         scale: float = 1.0) -> nn.Sequential:
    """Linear(d0, d1) then Linear(d1, d2), no biases, the paper's width-independent init:
    (W1)_ij ~ N(0, scale^2 / (d1 d0)), (W2)_ij ~ N(0, scale^2 / (d2 d1)).

    >>> import torch
    >>> from noisereg.theory import two_layer_linear_net
    >>> net = two_layer_linear_net(4, 8, 2, seed=0)
    >>> [tuple(w.shape) for w in net.parameters()], net(torch.ones(5, 4)).shape
    ([(8, 4), (2, 8)], torch.Size([5, 2]))
    >>> torch.equal(net[0].weight, two_layer_linear_net(4, 8, 2, seed=0)[0].weight)
    True
    """
    for name, d in (("d0", d0), ("d1", d1), ("d2", d2)):
        check_int(name, d, low=1)
    net = nn.Sequential(nn.Linear(d0, d1, bias=False, device="meta"),
                        nn.Linear(d1, d2, bias=False, device="meta")).to_empty(device="cpu")
    gen = torch_generator(seed, "init")
    with torch.no_grad():
        net[0].weight.normal_(0, scale / math.sqrt(d1 * d0), generator=gen)
        net[1].weight.normal_(0, scale / math.sqrt(d2 * d1), generator=gen)
    return net


# ----------------------------------------------------------------------------- group net


def group_net_smoothed_loss(Xs: Sequence[torch.Tensor], y: torch.Tensor, v: torch.Tensor,
                            ws: Sequence[torch.Tensor], sigma: float,
                            exact: bool = True) -> torch.Tensor:
    """R_sigma of Phi = sum_j v_j X_j w_j (global noise), exactly:
    R_eff + sigma^4 sum_j ||X_j||_F^2 / (2n); ``exact=False`` returns R_eff.

    >>> import torch
    >>> from noisereg.theory import group_net_smoothed_loss
    >>> Xs = [torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.eye(2)]  # ||X_j||_F^2 = 26, 2
    >>> y, v, ws = torch.ones(2), torch.ones(2), [torch.ones(2), torch.ones(2)]
    >>> extra = (group_net_smoothed_loss(Xs, y, v, ws, sigma=1.0)
    ...          - group_net_smoothed_loss(Xs, y, v, ws, sigma=1.0, exact=False))
    >>> extra.item()  # (26 + 2) / (2 * 2)
    7.0
    """
    n = _check_design(Xs[0], "Xs[0]").shape[0]
    s2 = check_nonnegative("sigma", sigma) ** 2
    parts = [X @ w for X, w in zip(Xs, ws)]
    fro2 = torch.stack([X.pow(2).sum() for X in Xs])
    phi = sum(vj * p for vj, p in zip(v, parts))
    r_eff = _sq_loss(y - phi) + s2 / (2 * n) * sum(
        p.pow(2).sum() + vj**2 * f for p, vj, f in zip(parts, v, fro2))
    return r_eff + s2**2 * fro2.sum() / (2 * n) if exact else r_eff


def group_lasso_penalty(Xs: Sequence[torch.Tensor], betas: Sequence[torch.Tensor],
                        sigma: float) -> torch.Tensor:
    """(sigma^2/n) sum_j ||X_j||_F ||X_j beta_j||: the minimum of the sigma^2 term of the group
    net over the factorizations beta_j = v_j w_j.

    >>> import torch
    >>> from noisereg.theory import group_lasso_penalty
    >>> Xs = [2 * torch.eye(2)]  # ||X_1||_F = 2 sqrt(2), ||X_1 beta_1|| = 10
    >>> round(group_lasso_penalty(Xs, [torch.tensor([3.0, 4.0])], sigma=1.0).item(), 4)
    14.1421
    """
    n = _check_design(Xs[0], "Xs[0]").shape[0]
    s2 = check_nonnegative("sigma", sigma) ** 2
    return s2 / n * sum(X.norm() * (X @ b).norm() for X, b in zip(Xs, betas))


# ----------------------------------------------------------------------------- any model


def effective_regularizer(model: nn.Module, inputs: torch.Tensor, sigma: float, *,
                          loss: Literal["squared", "cross_entropy"] = "squared") -> torch.Tensor:
    """The sigma^2 term of noise injection, differentiable: train on
    ``loss_fn(model(x), y) + effective_regularizer(model, x, sigma)`` to compare noise with its
    explicit twin.

    squared loss (mean over samples of ||y - f(x)||^2 / 2): sigma^2/(2n) ||D Phi||_F^2, the
    per-sample Jacobians of the outputs w.r.t. all trainable parameters (torch.func, vmap over
    samples). cross_entropy (mean): sigma^2/(2n) sum_i tr((diag p_i - p_i p_i^T) J_i J_i^T), the
    Gauss-Newton part. Memory is n x outputs x parameters; layers must treat samples
    independently (BatchNorm in eval mode).

    For a linear model the Jacobian is the input: sigma^2/(2n) sum_i ||x_i||^2.

    >>> import torch
    >>> from noisereg.theory import effective_regularizer
    >>> model = torch.nn.Linear(2, 1, bias=False)
    >>> X = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    >>> round(effective_regularizer(model, X, sigma=0.1).item(), 6)  # 0.01 / 4 * 26
    0.065
    """
    check_choice("loss", loss, ("squared", "cross_entropy"))
    s2 = check_nonnegative("sigma", sigma) ** 2
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}

    def single(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (x.unsqueeze(0),)).reshape(-1)

    jac = vmap(jacrev(single), in_dims=(None, 0))(params, inputs)
    n = inputs.shape[0]
    flat = torch.cat([j.reshape(n, j.shape[1], -1) for j in jac.values()], dim=2)  # n, out, P
    if loss == "squared":
        return s2 / (2 * n) * flat.pow(2).sum()
    probs = torch.softmax(model(inputs).reshape(n, -1), dim=1)
    gram = flat @ flat.transpose(1, 2)  # n, out, out
    curvature = (probs * gram.diagonal(dim1=1, dim2=2)).sum() - torch.einsum(
        "ni,nij,nj->", probs, gram, probs)
    return s2 / (2 * n) * curvature
