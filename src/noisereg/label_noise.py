"""Label noise as a target transform for any training loop (Pillaud-Vivien et al. 2022).

Regression (``kind="rademacher"`` or ``"gaussian"``), delta = ``scale``:
    y~ = y + delta * eps,   eps uniform on {-1, +1}  or  eps ~ N(0, 1).
Classification (``kind="flip"``), p = ``scale``, C = ``num_classes``:
    y~ = y with probability 1 - p, else uniform over the C - 1 other classes,
    i.e. y~ = (y + k) mod C with k uniform on {1, ..., C-1}.
Fresh noise at every call: on a diagonal linear network, SGD on the noisy labels implicitly
solves a Lasso with lambda = gamma delta^2 / B (:func:`noisereg.theory.label_noise_lasso_penalty`).
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from noisereg._seeding import torch_generator
from noisereg._validate import check_choice, check_fraction, check_int, check_nonnegative
from noisereg.optim._noise import current_rank


class LabelNoise:
    """``noisy = LabelNoise("rademacher", delta)(targets)``; returns a new tensor.

    Randomness: call k draws from ``torch_generator(seed, "label-noise", stream, k)``.
    ``noise_sync="shared"`` (stream 0) gives every DDP rank identical noise for identical
    inputs; ``"per_rank"`` folds the rank (``torch.distributed.get_rank()`` when initialised,
    else 0) into the stream, so ranks holding different shards get independent noise. The state
    is the call counter: ``state_dict()`` / ``load_state_dict()`` resume the same noise sequence.

    ``shard=(rank, world)`` says that ``targets`` are rows ``rank::world`` of a global batch:
    the noise of the whole global batch is drawn and the shard's rows are kept, so data-parallel
    ranks together apply exactly the noise one process applies to the global batch.

    ``ignore_index`` (``kind="flip"``; default -100, as ``F.cross_entropy`` and HuggingFace
    labels): class labels equal to it are returned unchanged (their draws are still made, so the
    noise of the other labels does not depend on which are ignored); ``None`` ignores nothing.

    Rademacher noise moves every target by exactly +-delta; flipping with p = 1 changes every
    label, leaving ignored ones:

    >>> import torch
    >>> from noisereg import LabelNoise
    >>> y = torch.tensor([0.0, 1.0, 2.0])
    >>> (LabelNoise("rademacher", 0.5)(y) - y).abs().tolist()
    [0.5, 0.5, 0.5]
    >>> labels = torch.tensor([0, 1, 2, -100])
    >>> noisy = LabelNoise("flip", 1.0, num_classes=3)(labels)
    >>> (noisy[:3] != labels[:3]).all().item(), noisy[3].item()
    (True, -100)

    The same seed and call count give the same noise:

    >>> a, b = LabelNoise("gaussian", 0.1, seed=3), LabelNoise("gaussian", 0.1, seed=3)
    >>> torch.equal(a(y), b(y)), a.state_dict()
    (True, {'seed': 3, 'noise_sync': 'shared', 'calls': 1})
    """

    def __init__(self, kind: Literal["rademacher", "gaussian", "flip"], scale: float,
                 seed: int = 0, num_classes: int | None = None,
                 noise_sync: Literal["shared", "per_rank"] = "shared",
                 ignore_index: int | None = -100) -> None:
        self.kind = check_choice("kind", kind, ("rademacher", "gaussian", "flip"))
        if kind == "flip":
            self.scale = check_fraction("scale", scale)
            if num_classes is None:
                raise ValueError("num_classes is required for kind='flip' (an integer >= 2)")
            self.num_classes: int | None = check_int("num_classes", num_classes, low=2)
        else:
            self.scale = check_nonnegative("scale", scale)
            self.num_classes = None
        self.seed = check_int("seed", seed, low=0)
        self.noise_sync = check_choice("noise_sync", noise_sync, ("shared", "per_rank"))
        self.ignore_index = None if ignore_index is None else check_int("ignore_index",
                                                                        ignore_index)
        self.calls = 0

    def _generator(self) -> torch.Generator:
        stream = 0
        if self.noise_sync == "per_rank":
            stream = 1 + current_rank()
        gen = torch_generator(self.seed, "label-noise", stream, self.calls)
        self.calls += 1
        return gen

    def __call__(self, targets: torch.Tensor, *,
                 shard: tuple[int, int] | None = None) -> torch.Tensor:
        if not isinstance(targets, torch.Tensor):
            raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
        rank, world = (0, 1) if shard is None else shard
        check_int("shard world size", world, low=1)
        check_int("shard rank", rank, low=0, high=world - 1)
        if targets.ndim == 0 and world > 1:
            raise ValueError("shard needs targets with a batch dimension")
        shape = (targets.shape[0] * world, *targets.shape[1:]) if targets.ndim else ()
        gen = self._generator()

        def draw(sample):  # the global batch's noise, then this shard's rows
            noise = sample(shape)
            return noise[rank::world] if world > 1 else noise

        if self.kind == "flip":
            return self._flip(targets, gen, draw)
        if not targets.is_floating_point():
            raise ValueError(f"kind={self.kind!r} needs float targets, got {targets.dtype}")
        if self.kind == "rademacher":
            eps = draw(lambda s: torch.randint(0, 2, s, generator=gen)).to(targets.dtype) * 2 - 1
        else:
            eps = draw(lambda s: torch.randn(s, generator=gen, dtype=targets.dtype))
        return targets + self.scale * eps.to(targets.device)

    def _flip(self, targets: torch.Tensor, gen: torch.Generator, draw) -> torch.Tensor:
        C = self.num_classes
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise ValueError(f"kind='flip' needs integer class labels, got {targets.dtype}")
        kept = targets if self.ignore_index is None else targets[targets != self.ignore_index]
        if kept.numel() and (kept.min() < 0 or kept.max() >= C):
            ignored = "" if self.ignore_index is None else f" (or ignore_index={self.ignore_index})"
            raise ValueError(f"targets must be class labels in [0, {C}) for num_classes={C}"
                             f"{ignored}")
        flip = draw(lambda s: torch.rand(s, generator=gen)) < self.scale
        shift = draw(lambda s: torch.randint(1, C, s, generator=gen))
        shift = torch.where(flip, shift, 0).to(device=targets.device, dtype=targets.dtype)
        noisy = (targets + shift) % C
        if self.ignore_index is None:
            return noisy
        return torch.where(targets == self.ignore_index, targets, noisy)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "noise_sync": self.noise_sync, "calls": self.calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"seed", "noise_sync", "calls"} - set(state)
        if missing:
            raise ValueError(f"state is missing {sorted(missing)}")
        self.seed = check_int("seed", state["seed"], low=0)
        self.noise_sync = check_choice("noise_sync", state["noise_sync"], ("shared", "per_rank"))
        self.calls = check_int("calls", state["calls"], low=0)

    def __repr__(self) -> str:
        extra = f", num_classes={self.num_classes}" if self.num_classes else ""
        if self.kind == "flip" and self.ignore_index != -100:
            extra += f", ignore_index={self.ignore_index}"
        return (f"LabelNoise(kind={self.kind!r}, scale={self.scale:g}, seed={self.seed}"
                f"{extra}, noise_sync={self.noise_sync!r})")
