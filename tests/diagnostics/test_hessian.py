"""Hessian trace and top eigenvalue against the exact Hessian from torch.func.hessian, and the
known variance of Hutchinson's estimator."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call, hessian
from torch.nn.attention import SDPBackend, sdpa_kernel

from noisereg.diagnostics.hessian import hessian_trace, top_eigenvalue

pytestmark = pytest.mark.usefixtures("one_thread")


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (out - target).pow(2).mean()


def _tanh_net(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    with torch.no_grad():
        for k, p in enumerate(model.parameters()):
            p.copy_(_randn(*p.shape, seed=seed + k))
    return model, _randn(20, 3, seed=seed + 10), _randn(20, 2, seed=seed + 11)


def _exact_hessian(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The full Hessian over all parameters (flattened in model.parameters() order)."""
    params = {k: p.detach() for k, p in model.named_parameters()}
    shapes = [(k, p.shape, p.numel()) for k, p in params.items()]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        unflat, start = {}, 0
        for k, shape, size in shapes:
            unflat[k] = flat[start:start + size].view(shape)
            start += size
        return loss_fn(functional_call(model, unflat, (x,)), y)

    return hessian(loss)(torch.cat([p.reshape(-1) for p in params.values()]))


def test_hutchinson_matches_the_exact_trace_and_its_variance():
    model, x, y = _tanh_net()
    H = _exact_hessian(model, mse, x, y)
    estimate = hessian_trace(model, mse, x, y, probes=400, seed=1)
    assert abs(estimate.trace - float(torch.trace(H))) < 4 * estimate.stderr
    # Rademacher probes: Var(v^T H v) = 2 (||H||_F^2 - sum_i H_ii^2)
    std = math.sqrt(2 * float(H.pow(2).sum() - torch.diagonal(H).pow(2).sum()))
    assert abs(estimate.stderr / (std / math.sqrt(400)) - 1) < 0.2
    assert estimate.probes == 400 and estimate.method == "hutchinson"


def test_diagonal_hessian_gives_the_exact_trace_with_every_probe():
    """v^T H v = sum_i H_ii v_i^2 = tr H when H is diagonal and v_i = +-1."""
    x = torch.diag(_randn(6, seed=2).abs() + 0.5)  # orthogonal columns: H = X^T X / n diagonal
    model = nn.Linear(6, 1, bias=False).double()
    y = _randn(6, 1, seed=3)
    estimate = hessian_trace(model, mse, x, y, probes=5)
    assert abs(estimate.trace - float(2 * x.pow(2).sum() / 6)) < 1e-12
    assert estimate.stderr < 1e-12


def test_per_layer_traces_are_the_diagonal_blocks():
    model, x, y = _tanh_net(seed=4)
    H = _exact_hessian(model, mse, x, y)
    estimate = hessian_trace(model, mse, x, y, probes=300, per_layer=True)
    sizes = {"0": 3 * 5 + 5, "2": 5 * 2 + 2}
    start = 0
    for name, size in sizes.items():
        block = float(torch.trace(H[start:start + size, start:start + size]))
        layer = estimate.per_layer[name]
        assert abs(layer.trace - block) < 4 * layer.stderr
        start += size
    assert abs(sum(v.trace for v in estimate.per_layer.values()) - estimate.trace) < 1e-9


def test_hutchpp_is_exact_with_a_full_sketch_and_beats_hutchinson_on_low_rank():
    model, x, y = _tanh_net(seed=5)
    exact = float(torch.trace(_exact_hessian(model, mse, x, y)))
    dim = sum(p.numel() for p in model.parameters())
    full = hessian_trace(model, mse, x, y, probes=3 * dim, method="hutch++")
    assert abs(full.trace - exact) < 1e-8 * max(1.0, abs(exact))
    # a linear model with a few dominant directions: H = 2 X^T X / n
    scales = torch.tensor([30.0, 20.0, 10.0] + [0.3] * 27, dtype=torch.float64)
    xs = _randn(50, 30, seed=6) * scales
    linear = nn.Linear(30, 1, bias=False).double()
    target = _randn(50, 1, seed=7)
    truth = float(2 * xs.pow(2).sum() / 50)
    errors = {method: sum(abs(hessian_trace(linear, mse, xs, target, probes=12, method=method,
                                            seed=s).trace - truth) for s in range(10))
              for method in ("hutchinson", "hutch++")}
    assert errors["hutch++"] < 0.2 * errors["hutchinson"]


def test_top_eigenvalue_matches_the_exact_spectrum():
    scales = torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    xs = _randn(40, 4, seed=8) * scales
    linear = nn.Linear(4, 1, bias=False).double()
    target = _randn(40, 1, seed=9)
    exact = float(torch.linalg.eigvalsh(2 * xs.T @ xs / 40)[-1])
    found = top_eigenvalue(linear, mse, xs, target, iters=500, tol=1e-12)
    assert found.converged and abs(found.value - exact) < 1e-8 * exact
    model, x, y = _tanh_net(seed=10)
    eig = torch.linalg.eigvalsh(_exact_hessian(model, mse, x, y))
    dominant = float(eig[eig.abs().argmax()])
    found = top_eigenvalue(model, mse, x, y, iters=5000, tol=1e-12)
    assert found.converged and abs(found.value - dominant) < 1e-6 * abs(dominant)


def test_estimates_are_reproducible_and_leave_the_model_alone():
    model, x, y = _tanh_net(seed=11)
    before = [p.detach().clone() for p in model.parameters()]
    a = hessian_trace(model, mse, x, y, probes=7, seed=3)
    b = hessian_trace(model, mse, x, y, probes=7, seed=3)
    assert a == b and a != hessian_trace(model, mse, x, y, probes=7, seed=4)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"probes": 0}, ValueError, "probes"),
    ({"probes": 5, "method": "xtrace"}, ValueError, "method"),
    ({"probes": 5, "method": "hutch++", "per_layer": True}, ValueError, "per_layer"),
    ({"probes": 2, "method": "hutch++"}, ValueError, "probes >= 3"),
    ({"probes": 5, "seed": -1}, ValueError, "seed"),
    ({"probes": 5, "inputs": torch.zeros(0, 3, dtype=torch.float64),
      "targets": torch.zeros(0, 2, dtype=torch.float64)}, ValueError,
     r"inputs must have a non-empty batch"),
    ({"probes": 5, "targets": torch.zeros(3, 2)}, ValueError, "targets must have the batch size"),
    ({"probes": 5, "inputs": [1.0]}, TypeError, "inputs must be a tensor"),
    ({"probes": 5, "forward": 3}, TypeError, "forward must be None or a callable"),
])
def test_bad_input_is_refused(kwargs, error, match):
    model, x, y = _tanh_net()
    args = {"inputs": x, "targets": y, **kwargs}
    with pytest.raises(error, match=match):
        hessian_trace(model, mse, **args)


def test_bad_models_and_losses_are_refused():
    model, x, y = _tanh_net()
    with pytest.raises(ValueError, match="scalar"):
        hessian_trace(model, lambda o, t: (o - t).pow(2), x, y, probes=3)
    frozen = nn.Linear(3, 2).double().requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad"):
        top_eigenvalue(frozen, mse, x, y)
    with pytest.raises(ValueError, match="tol"):
        top_eigenvalue(model, mse, x, y, tol=0.0)


class _TwoInputs(nn.Module):
    """y = W2 tanh(W1 x + b1) * scale with ``x`` passed by keyword (a dict batch)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        return self.net(x) * scale


def test_dict_batches_and_a_forward_callable():
    """Hutch++ with a full sketch is exact: the trace of the Hessian of the same loss."""
    net, x, y = _tanh_net(seed=12)
    model = _TwoInputs(net)
    exact = float(torch.trace(_exact_hessian(net, lambda out, t: mse(2.0 * out, t), x, y)))
    dim = sum(p.numel() for p in net.parameters())
    for inputs, forward in (({"x": x, "scale": 2.0}, None),
                            ((x,), lambda m, b: m(b[0], scale=2.0))):
        found = hessian_trace(model, mse, inputs, y, probes=3 * dim, method="hutch++",
                              forward=forward)
        assert abs(found.trace - exact) < 1e-8 * abs(exact)


def test_attention_models_have_hessian_vector_products_on_cpu():
    """Double backward through scaled-dot-product attention needs the math kernel."""
    layer = nn.TransformerEncoderLayer(4, 1, 4, dropout=0.0, batch_first=True).double()
    with torch.no_grad():
        for k, p in enumerate(layer.parameters()):
            p.copy_(0.5 * _randn(*p.shape, seed=20 + k))
    x, y = _randn(3, 5, 4, seed=13), _randn(3, 5, 4, seed=14)
    with sdpa_kernel(SDPBackend.MATH):
        exact = float(torch.trace(_exact_hessian(layer, mse, x, y)))
    estimate = hessian_trace(layer, mse, x, y, probes=60, seed=2)
    assert abs(estimate.trace - exact) < 4 * estimate.stderr
    assert top_eigenvalue(layer, mse, x, y, iters=3).iterations == 3


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-10), (torch.float32, 1e-5),
                                             (torch.bfloat16, 3e-2)])
def test_every_estimate_runs_on_the_parameters_device_and_dtype(device, dtype, rtol):
    """H = 2 X^T X / n is diagonal for orthogonal columns: every Rademacher probe gives the
    exact trace, hutch++ with a full sketch too, and the top eigenvalue is the largest entry."""
    diag = torch.tensor([3.0, 1.0, 0.5, 2.0])
    x = torch.diag(diag).to(device=device, dtype=dtype)
    y = torch.linspace(-1, 1, 4, dtype=dtype, device=device)[:, None]
    model = nn.Linear(4, 1, bias=False).to(device=device, dtype=dtype)
    entries = 2 * diag.pow(2) / 4
    trace = float(entries.sum())
    estimate = hessian_trace(model, mse, x, y, probes=4, per_layer=True)
    assert abs(estimate.trace - trace) < rtol * trace
    assert abs(estimate.per_layer[""].trace - trace) < rtol * trace
    full = hessian_trace(model, mse, x, y, probes=12, method="hutch++")
    assert abs(full.trace - trace) < rtol * trace
    top = top_eigenvalue(model, mse, x, y, iters=200, tol=1e-6)
    assert abs(top.value - float(entries.max())) < max(rtol, 1e-6) * float(entries.max())
