"""Gaussian noise streams keyed by (seed, step, parameter index[, rank]).

Every tensor's noise comes from a ``torch.Generator`` of its device seeded with
``derive(seed, "noise", rank, index, step)`` (:mod:`noisereg._seeding`), so

* every rank of a data-parallel job draws identical noise (the rank enters the key only with
  ``per_rank=True``; otherwise it is 0), which is what keeps DDP replicas in step;
* resuming needs only (seed, step): the draws of step n depend on nothing drawn before, nor on
  which layers earlier steps perturbed;
* layers never share noise (the parameter index is in the key; re-seeding every layer with the
  same seed would make their noise identical).

The keys are the same on every device; the numbers are the device generator's (CPU mt19937,
CUDA Philox), so a CPU run and a CUDA run draw different noise from the same keys. One
``normal_`` per tensor is the whole path: a thread pool sharing chunks of large tensors was
measured slower than this serial draw on 2 cores and removed (issue 12).

Caveat: mt19937 keeps 32 bits of its seed, so two of the S keys used in a run coincide with
probability about S^2 / 2^33 (two tensors with identical noise at two steps); immaterial for
training, but do not use these streams where independence of every block matters.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import torch
import torch.distributed as dist

from noisereg._seeding import derive, hash_state, key_of

_local = threading.local()  # generators per thread: optimizers may step in several threads


def current_rank() -> int:
    """The torch.distributed rank, 0 outside a process group."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _generator(device: torch.device) -> torch.Generator:
    """This thread's generator for ``device`` (re-seeded before every use)."""
    gens = _local.__dict__.setdefault("gens", {})
    if device not in gens:
        gens[device] = torch.Generator(device=device)
    return gens[device]


class NoiseStream:
    """N(0, std^2) draws for (step, parameter index) pairs; ``per_rank`` adds the rank to the key.

    The key of a tensor is ``derive(seed, "noise", rank, index, step)``; the hash state of
    everything but the step is cached, so a step costs one hash update per tensor.
    """

    def __init__(self, seed: int, *, per_rank: bool = False) -> None:
        self.seed = seed
        self.per_rank = per_rank
        self._prefix: dict[tuple[int, int], hashlib.blake2b] = {}

    def __getstate__(self) -> dict:
        return {"seed": self.seed, "per_rank": self.per_rank}  # hash states do not pickle

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["seed"], per_rank=state["per_rank"])

    def key(self, step: int, index: int, rank: int = 0) -> int:
        """The seed of parameter ``index``'s noise at ``step`` on ``rank``."""
        prefix = self._prefix.get((rank, index))
        if prefix is None:
            prefix = self._prefix[rank, index] = hash_state(self.seed, "noise", rank, index)
        return key_of(prefix, step)

    def _rank(self) -> int:
        return current_rank() if self.per_rank else 0

    def choice(self, step: int, m: int) -> int:
        """A layer index uniform on {0, ..., m-1} for ``step`` (bias below m / 2^63)."""
        return derive(self.seed, "layer-choice", self._rank(), step) % m

    def fill_(self, items: Sequence[tuple[torch.Tensor, int, float]], step: int) -> None:
        """Overwrite each tensor of ``items`` = (tensor, parameter index, std) with the noise of
        (step, index), drawn in its memory order (contiguous tensors only)."""
        rank = self._rank()
        for tensor, index, std in items:
            if not tensor.is_contiguous():
                raise ValueError("noise is drawn into contiguous tensors only")
            gen = _generator(tensor.device)
            gen.manual_seed(self.key(step, index, rank))
            tensor.detach().normal_(0.0, std, generator=gen)
