"""The one seed derivation: its documented hash (checked against hashlib directly), distinct and
uncorrelated streams for distinct keys, the same stream for the same key, and resumption of
every stateful stream (PerturbedOptimizer, LabelNoise, Trainer) from its state dict."""

import hashlib
import itertools
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import noisereg
from noisereg._seeding import PURPOSES, derive, numpy_generator, torch_generator
from noisereg.optim._noise import NoiseStream
from noisereg.trainer import TrainConfig, Trainer

N = 100_000
SRC = Path(noisereg.__file__).parent


def _reference(seed: int, purpose: str, *indices: int) -> int:
    """The derivation as the _seeding docstring states it, written with hashlib and struct."""
    data = struct.pack(f"<{1 + len(indices)}Q", seed, *indices)
    digest = hashlib.blake2b(data, digest_size=8, person=purpose.encode()).digest()
    return struct.unpack("<Q", digest)[0] >> 1


def test_known_answers_match_the_documented_hash() -> None:
    assert derive(0, "noise", 0) == _reference(0, "noise", 0)
    cases = [(0, "noise"), (7, "batches", 123), (2**64 - 1, "label-noise", 1, 2**63),
             (5, "noise", 0, 3, 10**9)]
    for seed, purpose, *indices in cases:
        key = derive(seed, purpose, *indices)
        assert key == _reference(seed, purpose, *indices) and 0 <= key < 2**63


def test_no_two_keys_of_a_grid_coincide() -> None:
    grid = [(s, p, *ix) for s in range(20) for p in PURPOSES
            for ix in [(), *((i,) for i in range(10)), *itertools.product(range(4), repeat=2)]]
    keys = [derive(*key) for key in grid]
    assert len(set(keys)) == len(grid)


NEIGHBOURS = [  # pairs of keys a careless scheme would correlate or alias
    ((0, "noise", 0, 0, 0), (0, "noise", 0, 0, 1)),  # next step
    ((0, "noise", 0, 0, 0), (0, "noise", 0, 1, 0)),  # next parameter
    ((0, "data"), (1, "data")),  # next seed
    ((0, "data"), (0, "init")),  # another purpose, same seed
    ((1, "batches", 0), (0, "batches", 1_000_003)),  # the former seed * stride + step aliasing
    ((0, "label-noise", 1), (0, "label-noise", 0, 1)),  # indices of different length
]


@pytest.mark.parametrize("a, b", NEIGHBOURS)
def test_streams_of_neighbouring_keys_are_uncorrelated(a, b) -> None:
    """Sample correlations of 1e5 normal draws (and of numpy uniforms) within 5 standard
    errors of 0, and no equal draws."""
    x, y = (torch.randn(N, generator=torch_generator(*k), dtype=torch.float64) for k in (a, b))
    assert abs(float(torch.corrcoef(torch.stack([x, y]))[0, 1])) < 5 / N**0.5
    assert not torch.equal(x[:10], y[:10])
    u, v = (numpy_generator(*k).random(N) for k in (a, b))
    assert abs(np.corrcoef(u, v)[0, 1]) < 5 / N**0.5


def test_the_same_key_gives_the_same_stream() -> None:
    a = torch.randn(100, generator=torch_generator(3, "data", 1))
    assert torch.equal(a, torch.randn(100, generator=torch_generator(3, "data", 1)))
    assert np.array_equal(numpy_generator(3, "data", 1).random(100),
                          numpy_generator(3, "data", 1).random(100))


def test_noise_stream_keys_are_the_derivation() -> None:
    """The optimizer's cached per-step key is derive(seed, "noise", rank, index, step)."""
    stream = NoiseStream(11)
    for step, index, rank in itertools.product((0, 1, 5000), (0, 3), (0, 2)):
        assert stream.key(step, index, rank) == _reference(11, "noise", rank, index, step)


@pytest.mark.parametrize("args, error, message", [
    ((0, "nosie"), ValueError, "purpose must be one of"),
    ((-1, "noise"), ValueError, "seed must be in"),
    ((0, "noise", 2**64), ValueError, "index 0 must be in"),
    ((True, "noise"), TypeError, "seed must be an integer"),
    ((0, "noise", 1.0), TypeError, "index 0 must be an integer"),
])
def test_bad_keys_are_refused_naming_the_part(args, error, message) -> None:
    with pytest.raises(error, match=message):
        derive(*args)


def test_no_stream_of_the_library_or_lab_is_seeded_outside_the_derivation() -> None:
    """Only _seeding seeds generators (and the optimizer's noise, with keys it derives)."""
    allowed = {SRC / "_seeding.py", SRC / "optim" / "_noise.py"}
    pattern = re.compile(r"manual_seed\(|default_rng\(|SeedSequence|RandomState\(")
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if p not in allowed and pattern.search(p.read_text())]
    assert offenders == []


# ---------------------------------------------------------------------------- resumption


def _model() -> nn.Module:
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    with torch.no_grad():
        for k, p in enumerate(model.parameters()):
            p.copy_(torch.linspace(-1, 1, p.numel(), dtype=p.dtype).reshape(p.shape) / (k + 2))
    return model


def _pgd_steps(model: nn.Module, opt: torch.optim.Optimizer, steps: int) -> None:
    x = torch.linspace(-1, 1, 40, dtype=torch.float64).reshape(8, 5)
    for _ in range(steps):
        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.mse_loss(model(x), x[:, :1])
            loss.backward()
            return loss
        opt.step(closure)


@pytest.mark.parametrize("mode", ["global", "layerwise"])
def test_perturbed_optimizer_resumes_its_noise_from_the_state_dict(mode: str) -> None:
    def make(model: nn.Module) -> torch.optim.Optimizer:
        return noisereg.PerturbedOptimizer(model.parameters(), torch.optim.SGD, sigma=0.1,
                                           mode=mode, seed=4, lr=0.05, momentum=0.9)
    straight = _model()
    _pgd_steps(straight, make(straight), 6)
    first = _model()
    opt = make(first)
    _pgd_steps(first, opt, 3)
    resumed = _model()
    resumed.load_state_dict(first.state_dict())
    opt2 = make(resumed)
    opt2.load_state_dict(opt.state_dict())
    _pgd_steps(resumed, opt2, 3)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_label_noise_resumes_from_the_state_dict() -> None:
    targets = torch.zeros(50, dtype=torch.float64)
    straight = noisereg.LabelNoise("gaussian", 1.0, seed=2)
    calls = [straight(targets) for _ in range(4)]
    first = noisereg.LabelNoise("gaussian", 1.0, seed=2)
    first(targets), first(targets)
    resumed = noisereg.LabelNoise("gaussian", 1.0, seed=0)
    resumed.load_state_dict(first.state_dict())
    assert torch.equal(resumed(targets), calls[2]) and torch.equal(resumed(targets), calls[3])
    assert not torch.equal(calls[0], calls[1])  # a fresh stream per call


@pytest.mark.parametrize("method", ["pgd-layerwise", "label-noise"])
def test_trainer_resumes_batches_and_noise_from_the_state_dict(method: str) -> None:
    config = TrainConfig(method=method, widths=(8,), n_train=64, n_test=16, steps=6,
                         batch_size=16, sigma=0.05, flip=0.2, seed=3, device="cpu")
    straight = Trainer(config)
    losses = [straight.step() for _ in range(6)]
    first = Trainer(config)
    for _ in range(3):
        first.step()
    resumed = Trainer(config)
    resumed.load_state_dict(first.state_dict())
    assert [resumed.step() for _ in range(3)] == losses[3:]
    assert not torch.equal(resumed.batch_indices(0), resumed.batch_indices(1))
