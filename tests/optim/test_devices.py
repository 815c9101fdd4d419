"""Every tensor the optimizers allocate follows the parameters' device and dtype, and the noise
of (seed, step, parameter) comes from one documented key on every device (CUDA when present)."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch
from torch import nn

from noisereg.optim import AntiPGD, PerturbedOptimizer
from noisereg.optim._noise import NoiseStream

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64, torch.bfloat16]
SIZES = (40000, 3000)
pytestmark = pytest.mark.parametrize("device", DEVICES)


def _zeros(device: str, dtype: torch.dtype) -> list[nn.Parameter]:
    return [nn.Parameter(torch.zeros(n, device=device, dtype=dtype)) for n in SIZES]


def _step(opt: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = sum((p.float() - 1).pow(2).sum() for p in params)
        loss.backward()
        return loss
    opt.step(closure)


def _expected_noise(seed: int, step: int, index: int, like: torch.Tensor,
                    std: float) -> torch.Tensor:
    """The documented stream: the whole tensor from a generator of its device seeded with the
    key of (seed, rank 0, index, step)."""
    gen = torch.Generator(device=like.device).manual_seed(NoiseStream(seed).key(step, index))
    return torch.empty_like(like).normal_(0.0, std, generator=gen)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pgd_noise_is_the_keyed_stream_of_the_parameters_device(device, dtype):
    params = _zeros(device, dtype)
    opt = PerturbedOptimizer(params, torch.optim.SGD, sigma=0.5, seed=11, lr=0.1)
    with opt.perturbed(6):  # zero weights: the perturbed weights are the noise itself
        for index, p in enumerate(params):
            assert torch.equal(p.detach(), _expected_noise(11, 6, index, p, 0.5))
            z = p.detach().double() / 0.5
            assert abs(float(z.std()) - 1) < 6 / math.sqrt(2 * z.numel()) + 4e-3  # bf16 rounding
    assert all(not p.any() for p in params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pgd_buffers_and_base_state_follow_the_parameters(device, dtype):
    params = _zeros(device, dtype)
    opt = PerturbedOptimizer(params, torch.optim.SGD, sigma=0.1, lr=0.1, momentum=0.9)
    _step(opt, params)
    opt.perturb()
    tensors = [*opt._perturbation._backups.values(),
               *(opt.state[p]["momentum_buffer"] for p in params)]
    assert len(tensors) == 4
    assert all(t.device == params[0].device and t.dtype == dtype for t in tensors)
    opt.restore()


@pytest.mark.parametrize("dtype", DTYPES)
def test_anti_pgd_xi_follows_the_parameters_through_a_checkpoint(device, dtype):
    params = _zeros(device, dtype)
    opt = AntiPGD(params, torch.optim.SGD, sigma=0.2, seed=5, lr=0.0)
    _step(opt, params)
    for index, p in enumerate(params):
        xi = opt.xi(p)
        assert xi.device == p.device and xi.dtype == dtype
        assert torch.equal(xi, _expected_noise(5, 1, index, p, 0.2))
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    fresh = AntiPGD(params, torch.optim.SGD, sigma=0.2, lr=0.0)
    fresh.load_state_dict(torch.load(buffer, map_location="cpu", weights_only=True))
    assert all(fresh.xi(p).device == p.device and torch.equal(fresh.xi(p), opt.xi(p))
               for p in params)


def test_the_loss_check_needs_no_host_sync_unless_asked(device):
    """Default: a non-finite loss is refused on the CPU; on an accelerator it is checked only
    with check_finite=True (a host sync per step)."""
    def run(check: bool | None) -> int:
        params = _zeros(device, torch.float32)
        opt = PerturbedOptimizer(params, torch.optim.SGD, sigma=0.1, lr=0.1, check_finite=check)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = params[0].sum() * math.inf
            loss.backward()
            return loss

        with contextlib.suppress(FloatingPointError):
            opt.step(closure)
        return opt.num_steps

    assert run(True) == 0 and run(False) == 1
    assert run(None) == (0 if device == "cpu" else 1)
