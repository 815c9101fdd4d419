"""The one seed derivation of the library and the lab: every random stream is keyed by
(seed, purpose, indices) and drawn from an explicit generator, never from the global RNG.

``derive(seed, purpose, *indices)`` is the BLAKE2b hash (``hashlib.blake2b``, 8-byte digest,
``person`` = the purpose in ASCII) of the seed and then each index, each written as 8 bytes
little-endian unsigned; the digest read as a little-endian integer and shifted right by one
bit is the key, in [0, 2^63) (it fits a signed 64-bit integer: a torch seed, a JSON number).
Keys of different (seed, purpose, indices) are as good as independent: a collision among S keys
has probability about S^2 / 2^64, and the streams seeded with them share nothing else.

Purposes are the fixed names of ``PURPOSES``, so that two parts of a run never draw the same
stream by choosing the same integers. A function that draws takes a ``seed`` and derives its
own purpose's stream from it, so one seed can be handed to the data, the model, the optimizer
and the label noise alike. A caller that needs several independent calls of one function
under one seed passes ``derive(seed, purpose, i)`` as the ``i``-th call's seed.

Caveat: torch's CPU generator (mt19937) keeps the low 32 bits of its seed, so two of S torch
CPU streams coincide with probability about S^2 / 2^33; numpy's PCG64 keeps all 63 bits.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

PURPOSES: dict[str, str] = {
    "noise": "weight noise of PerturbedOptimizer, AntiPGD and smoothed_loss, keyed "
             "(rank, parameter index, step); other weight noise, keyed as its caller says",
    "layer-choice": "the layer PerturbedOptimizer perturbs at a step, keyed (rank, step)",
    "label-noise": "label noise: LabelNoise keyed (stream, call), label_noise_sgd unkeyed",
    "batches": "the minibatch of a training step, keyed (step)",
    "init": "initial weights of a model",
    "data": "a synthetic data set or the shuffle of a train/test split",
    "test-data": "a held-out synthetic data set drawn apart from the training data",
    "probes": "random directions of trace and complexity estimators",
    "pairs": "sample pairs of geometry measurements, keyed (stream: the split's index)",
    "input-noise": "perturbations of test inputs (robustness curves)",
    "bootstrap": "resampling of per-seed values when a claim is decided",
}
_U64 = 1 << 64


def _check_part(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer in [0, 2^64), got {type(value).__name__}")
    if not 0 <= value < _U64:
        raise ValueError(f"{name} must be in [0, 2^64), got {value}")
    return int(value)


def _update(h: hashlib.blake2b, indices: tuple[int, ...]) -> hashlib.blake2b:
    for k, index in enumerate(indices):
        h.update(_check_part(f"index {k}", index).to_bytes(8, "little"))
    return h


def hash_state(seed: int, purpose: str, *indices: int) -> hashlib.blake2b:
    """The hash state after (seed, purpose, indices): a prefix that :func:`key_of` extends with
    more indices (how NoiseStream keys a step from a cached prefix)."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {sorted(PURPOSES)}, got {purpose!r}")
    h = hashlib.blake2b(digest_size=8, person=purpose.encode("ascii"))
    h.update(_check_part("seed", seed).to_bytes(8, "little"))
    return _update(h, indices)


def key_of(prefix: hashlib.blake2b, *indices: int) -> int:
    """The 63-bit key of ``prefix`` (a :func:`hash_state`, left unchanged) followed by
    ``indices``: ``key_of(hash_state(s, p, *a), *b) == derive(s, p, *a, *b)``."""
    return int.from_bytes(_update(prefix.copy(), indices).digest(), "little") >> 1


def derive(seed: int, purpose: str, *indices: int) -> int:
    """The key of stream (``seed``, ``purpose``, ``indices``), in [0, 2^63); see the module
    docstring for the exact hash. ``seed`` and ``indices`` are integers in [0, 2^64).

    >>> import hashlib
    >>> h = hashlib.blake2b((5).to_bytes(8, "little") + (2).to_bytes(8, "little"),
    ...                     digest_size=8, person=b"batches")
    >>> derive(5, "batches", 2) == int.from_bytes(h.digest(), "little") >> 1
    True
    """
    return key_of(hash_state(seed, purpose, *indices))


def torch_generator(seed: int, purpose: str, *indices: int,
                    device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``derive(seed, purpose, *indices)``.

    >>> import torch
    >>> from noisereg.models import torch_generator
    >>> a = torch.randn(3, generator=torch_generator(0, "init"))
    >>> torch.equal(a, torch.randn(3, generator=torch_generator(0, "init")))  # same key
    True
    >>> torch.equal(a, torch.randn(3, generator=torch_generator(0, "init", 1)))  # another index
    False
    """
    return torch.Generator(device=device).manual_seed(derive(seed, purpose, *indices))


def numpy_generator(seed: int, purpose: str, *indices: int) -> np.random.Generator:
    """A numpy PCG64 generator seeded with ``derive(seed, purpose, *indices)``.

    >>> numpy_generator(0, "data").random() == numpy_generator(0, "data").random()
    True
    """
    return np.random.default_rng(derive(seed, purpose, *indices))
