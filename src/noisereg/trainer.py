"""The training loop of the library: one method of noisereg, an MLP, minibatch SGD, on one
process or one rank of a ``DistributedDataParallel`` run. ``python -m noisereg.train`` is its
command-line face.

Methods: ``gd`` (plain SGD), ``pgd-global`` / ``pgd-layerwise`` (PerturbedOptimizer),
``anti-pgd`` (AntiPGD), ``label-noise`` (LabelNoise flips), ``pegr`` / ``gr`` (penalties on the
per-example cross-entropy of :mod:`noisereg.metrics`).

Every draw is keyed by the seed: the data split, the initial weights (built on the CPU, then
moved to ``device``), the noise, and the batch of step ``s``, drawn by :func:`batch_indices` from
the generator of key (seed, "batches", s) whatever ran before. A trainer restored with
``load_state_dict`` therefore continues bitwise like the uninterrupted run.

Under DDP (a process group initialized before the trainer is built, e.g. by ``torchrun``) the
model is wrapped in ``DistributedDataParallel`` and every rank takes rows ``rank::world`` of the
same global batch. Noise is drawn with ``noise_sync="shared"`` from keys (seed, step, parameter)
that are the same on every device, so the replicas stay bitwise identical and the run equals one
process on the global batch; ``gr`` is the exception, since it penalizes each rank's own
batch-mean gradient, which is not a per-example quantity.

``device`` is where the model and data live; ``amp`` (``bf16`` or ``fp16``) runs the forward pass
under ``torch.autocast`` (fp16 with a ``torch.amp.GradScaler`` kept in the state); an ``amp`` the
device cannot run is refused when the trainer is built.

A checkpoint (:func:`save_checkpoint`) holds no code: a header line (its format, then the sha256
of the rest), the config as JSON, then the trainer state saved by ``torch.save``;
:func:`load_checkpoint` reads it back with ``weights_only=True`` and refuses one that was changed
after writing, belongs to another config or holds anything but tensors and plain values.

>>> from noisereg.trainer import TrainConfig, Trainer
>>> config = TrainConfig(method="pgd-layerwise", steps=4, n_train=64, n_test=32,
...                      batch_size=16, widths=(8,), device="cpu")
>>> trainer = Trainer(config)
>>> result = trainer.fit()
>>> result.steps, len(result.losses), result.final_loss == result.losses[-1]
(4, 4, True)
>>> sorted(trainer.evaluate())
['test_accuracy', 'train_accuracy']
>>> from noisereg.trainer import AMPS, DEVICES, METHODS
>>> AMPS, DEVICES, len(METHODS)
(('none', 'bf16', 'fp16'), ('cpu', 'cuda'), 7)
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn

from noisereg._atomic import atomic_write_bytes
from noisereg._errors import one_line
from noisereg._seeding import torch_generator
from noisereg._validate import check_choice, check_finite, check_int
from noisereg.data.images import DATASETS, SIZES, Split, load_split
from noisereg.gradreg import regularized_loss
from noisereg.metrics import accuracy, per_example_cross_entropy
from noisereg.models.mlp import MLP

__all__ = ["AMPS", "DEVICES", "METHODS", "CheckpointError", "FitResult", "TrainConfig",
           "Trainer", "batch_indices", "load_checkpoint", "save_checkpoint"]

Method = Literal["gd", "pgd-global", "pgd-layerwise", "anti-pgd", "label-noise", "pegr", "gr"]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]
Device = Literal["cpu", "cuda"]
DEVICES: tuple[str, ...] = Device.__args__  # type: ignore[attr-defined]
DEFAULT_DEVICE: Device = "cuda" if torch.cuda.is_available() else "cpu"
Amp = Literal["none", "bf16", "fp16"]
AMPS: tuple[str, ...] = Amp.__args__  # type: ignore[attr-defined]
_AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MAX_SEED = 2**32 - 1
MAX_STEPS = 10**9  # a sanity bound on input: batches and noise are keyed for any step
_F32 = torch.finfo(torch.float32)
# Float32 copies of the weights a step may hold at once: weights, gradients, momentum, noise,
# saved weights, the checkpoint being written. Used to refuse widths that cannot fit in memory.
_WEIGHT_COPIES = 6


def _check_float32(name: str, value: float, *, zero: bool, high: float = _F32.max,
                   high_open: bool = False) -> float:
    """``value`` is 0 (when ``zero``) or a normal float32 number up to ``high``: training runs
    in float32, where a larger value overflows and a smaller nonzero one silently becomes 0."""
    value = check_finite(name, value)
    if not ((zero and value == 0.0)
            or (_F32.tiny <= value and (value < high if high_open else value <= high))):
        interval = f"[{_F32.tiny:.3g}, {high:.3g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be {'0 or ' if zero else ''}in {interval} (training runs "
                         f"in float32), got {value!r}")
    return value


@dataclass(frozen=True)
class TrainConfig:
    """One training run; every value is checked when the config is built (a bad one raises
    ``ValueError`` naming the field and what is allowed).

    >>> TrainConfig(steps=0)
    Traceback (most recent call last):
    ...
    ValueError: steps must be in [1, 1000000000], got 0
    """

    method: Method = "gd"
    dataset: Literal["digits", "mnist5k"] = "digits"
    n_train: int = 1024
    n_test: int = 500
    widths: tuple[int, ...] = (128,)
    steps: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.0
    sigma: float = 0.05  # weight-noise std (pgd-*, anti-pgd)
    lam: float = 1e-3  # penalty weight (pegr, gr)
    flip: float = 0.2  # label-flip probability (label-noise)
    seed: int = 0
    # Both change the numbers (a CUDA generator draws other noise from the same keys; autocast
    # rounds), so a checkpoint is bound to them like to any other field.
    device: Device = DEFAULT_DEVICE
    amp: Amp = "none"

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("device", self.device, DEVICES)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' is not available here (torch.cuda.is_available() "
                             "is False); use device 'cpu'")
        check_choice("amp", self.amp, AMPS)
        if self.amp == "fp16" and self.method in ("pegr", "gr"):
            # GradScaler scales the outer loss only: the penalty's inner gradients would be
            # taken unscaled in float16, where small ones flush to zero.
            raise ValueError(f"amp 'fp16' does not support method {self.method!r} (its penalty's "
                             "inner gradients are not loss-scaled); use amp 'bf16' or 'none'")
        check_choice("dataset", self.dataset, DATASETS)
        size = SIZES[self.dataset]
        check_int("n_train", self.n_train)
        if not 1 <= self.n_train < size:
            raise ValueError(f"n_train must be in [1, {size - 1}] for dataset {self.dataset!r} "
                             f"({size} examples, at least one kept for testing), "
                             f"got {self.n_train!r}")
        check_int("n_test", self.n_test)
        if not 1 <= self.n_test <= size - self.n_train:
            raise ValueError(f"n_test must be in [1, {size - self.n_train}] for dataset "
                             f"{self.dataset!r} with n_train={self.n_train} ({size} examples), "
                             f"got {self.n_test!r}")
        for w in self.widths:
            check_int("widths", w, low=1)
        check_int("steps", self.steps, low=1, high=MAX_STEPS)
        check_int("batch_size", self.batch_size, low=1, high=self.n_train)
        check_int("seed", self.seed, low=0, high=MAX_SEED)
        _check_float32("lr", self.lr, zero=False)
        _check_float32("momentum", self.momentum, zero=True, high=1.0, high_open=True)
        _check_float32("sigma", self.sigma, zero=True)
        _check_float32("lam", self.lam, zero=True)
        _check_float32("flip", self.flip, zero=True, high=1.0)


@dataclass(frozen=True)
class FitResult:
    """What :meth:`Trainer.fit` did: ``steps`` done in all (a resumed trainer counts the steps
    before it too), the loss of the last step, and the losses of the steps of this call.

    >>> from noisereg.trainer import TrainConfig, Trainer
    >>> config = TrainConfig(steps=3, n_train=32, n_test=16, batch_size=8, widths=(4,),
    ...                      device="cpu")
    >>> trainer = Trainer(config)
    >>> _ = trainer.step()  # one step by hand, then the rest
    >>> result = trainer.fit()
    >>> result.steps, len(result.losses), result.final_loss == result.losses[-1]
    (3, 2, True)
    """

    steps: int
    final_loss: float
    losses: tuple[float, ...]


def batch_indices(seed: int, step: int, n_train: int, batch_size: int) -> torch.Tensor:
    """The global batch of ``step``: ``batch_size`` distinct indices into the ``n_train``
    training examples, from the generator of key (``seed``, "batches", ``step``), so the same on
    every rank and whatever ran before.

    >>> batch_indices(0, 5, 10, 3).equal(batch_indices(0, 5, 10, 3))
    True
    """
    gen = torch_generator(seed, "batches", step)
    return torch.randperm(n_train, generator=gen)[:batch_size]


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return None


def _check_fits(widths: Sequence[int], features: int, classes: int) -> None:
    sizes = [features, *widths, classes]
    need = 4 * _WEIGHT_COPIES * sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    memory = _physical_memory()
    if memory is not None and need > memory:
        raise ValueError(f"widths {tuple(widths)} need about {need / 2**30:.3g} GiB for the "
                         f"weights and optimizer state, more than this machine's "
                         f"{memory / 2**30:.3g} GiB; use smaller widths")


def _device(kind: str) -> torch.device:
    """``cuda`` is the current CUDA device: each rank sets its own (``torch.cuda.set_device``)."""
    return torch.device("cuda", torch.cuda.current_device()) if kind == "cuda" else torch.device(
        "cpu")


def _check_amp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: str) -> None:
    """Refuse an ``amp`` the device cannot run, by one forward and backward pass on ``x``:
    CPU autocast silently turns itself off for a dtype it lacks, and some ops have no float16
    kernel on the CPU. Gradients are returned, not accumulated: the model is left as it was."""
    device = x.device.type
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Disabling autocast": checked below
            with torch.autocast(device, dtype=_AMP_DTYPES[amp]):
                if not torch.is_autocast_enabled(device):
                    raise RuntimeError(f"autocast to {_AMP_DTYPES[amp]} is not supported")
                loss = per_example_cross_entropy(model(x), y).mean()
        torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
    except (RuntimeError, NotImplementedError) as err:
        raise ValueError(f"amp {amp!r} cannot run on {device} with this model and torch "
                         f"{torch.__version__} ({one_line(err)}); use amp 'none'"
                         ) from None


def _config_diff(saved: Any, current: TrainConfig) -> str:
    """The fields in which ``saved`` (a config dict) differs from ``current``, as one line."""
    mine = json.loads(json.dumps(asdict(current)))  # tuples as lists, as stored
    if not isinstance(saved, dict):
        return "the config is missing"
    saved = json.loads(json.dumps(saved))
    return "; ".join(f"{k} is {saved.get(k, '(absent)')!r} in the checkpoint, "
                     f"{mine.get(k, '(absent)')!r} in this run"
                     for k in sorted(saved.keys() | mine.keys()) if saved.get(k) != mine.get(k))


class Trainer:
    """One method, one model, one optimizer: ``step()`` trains on the next global batch,
    ``fit()`` runs the remaining steps of the config.

    ``model`` replaces the config's MLP (it must take the data set's features and return one
    score per class); the config's widths then go unused.

    >>> import torch
    >>> from noisereg.trainer import TrainConfig, Trainer
    >>> config = TrainConfig(steps=2, n_train=32, n_test=16, batch_size=8, device="cpu")
    >>> trainer = Trainer(config, model=torch.nn.Linear(64, 10))  # digits: 64 features
    >>> trainer.fit().steps
    2
    """

    def __init__(self, config: TrainConfig, model: nn.Module | None = None) -> None:
        import noisereg

        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = c = config
        self.rank, self.world = _world()
        if c.batch_size % self.world:
            raise ValueError(f"batch_size ({c.batch_size}) must be divisible by the world size "
                             f"({self.world})")
        self.device = _device(c.device)
        data = load_split(c.dataset, c.n_train, c.n_test, seed=c.seed)
        self.data = Split(**{f.name: getattr(data, f.name).to(self.device)
                             for f in fields(Split)})
        if model is None:
            _check_fits(c.widths, self.data.num_features, self.data.num_classes)
        # Built and initialised on the CPU from the seed, then moved: the same start everywhere.
        self.module = (model if model is not None else MLP(
            self.data.num_features, c.widths, self.data.num_classes, seed=c.seed)).to(self.device)
        if c.amp != "none":
            _check_amp(self.module, self.data.x_train[:2], self.data.y_train[:2], c.amp)
        self.model: nn.Module = self.module
        if self.world > 1:
            self.model = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[self.device] if self.device.type == "cuda" else None)
        self.scaler = torch.amp.GradScaler(self.device.type) if c.amp == "fp16" else None
        params, base = self.module.parameters(), torch.optim.SGD
        kw = {"lr": c.lr, "momentum": c.momentum}
        if c.method.startswith("pgd-"):
            self.opt = noisereg.PerturbedOptimizer(params, base, sigma=c.sigma,
                                                   mode=c.method[4:], seed=c.seed, **kw)
        elif c.method == "anti-pgd":
            self.opt = noisereg.AntiPGD(params, base, sigma=c.sigma, seed=c.seed, **kw)
        else:
            self.opt = base(params, **kw)
        self.label_noise = (noisereg.LabelNoise("flip", c.flip, seed=c.seed,
                                                num_classes=self.data.num_classes)
                            if c.method == "label-noise" else None)
        self.steps_done = 0
        self.last_loss: float | None = None

    def batch_indices(self, step: int) -> torch.Tensor:
        """The global batch of ``step`` (:func:`batch_indices` of this config)."""
        c = self.config
        return batch_indices(c.seed, step, c.n_train, c.batch_size)

    def step(self) -> float:
        """Train on the next global batch and return its loss: under DDP the mean of the ranks'
        equal shard losses, i.e. the global batch's mean loss (for ``gr``, the mean of the
        shards' penalized losses). A non-finite loss raises ``FloatingPointError`` on every
        rank; the trainer must then not be stepped again (the base step may have been taken).
        """
        index = self.batch_indices(self.steps_done)[self.rank::self.world].to(self.device)
        x, y = self.data.x_train[index], self.data.y_train[index]
        if self.label_noise is not None:
            y = self.label_noise(y, shard=(self.rank, self.world))
        if self.scaler is None:
            def closure() -> torch.Tensor:
                self.opt.zero_grad()
                loss = self._loss(x, y)
                loss.backward()
                return loss

            loss = self.opt.step(closure).detach().clone()
        else:
            loss = self._scaled_step(x, y)
        if self.world > 1:
            dist.all_reduce(loss)
            loss /= self.world
        value = float(loss)
        if not math.isfinite(value):
            raise FloatingPointError(f"training diverged: the loss is {value} after "
                                     f"{self.steps_done} steps")
        self.steps_done += 1
        self.last_loss = value
        return value

    def fit(self, callback: Callable[[Trainer], None] | None = None) -> FitResult:
        """Step until ``config.steps`` are done (a restored trainer continues where it was),
        calling ``callback(self)`` after every step (e.g. to write a checkpoint). Raises
        ``FloatingPointError`` when a loss or, at the end, a weight is not finite."""
        losses = []
        while self.steps_done < self.config.steps:
            losses.append(self.step())
            if callback is not None:
                callback(self)
        if not all(bool(torch.isfinite(p).all()) for p in self.module.parameters()):
            raise FloatingPointError("training diverged: the final weights are not finite")
        assert self.last_loss is not None  # steps >= 1, all of them done
        return FitResult(self.steps_done, self.last_loss, tuple(losses))

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.config
        with torch.autocast(self.device.type, dtype=_AMP_DTYPES[c.amp], enabled=c.amp != "none"):
            if c.method in ("pegr", "gr"):
                # The penalty is built out of place (autograd.grad with create_graph) and the
                # one backward after it goes through the DDP wrapper: the pattern DDP supports.
                # Under autocast the per-example loop: ``auto`` checks the faster backends
                # against it on the first batch it sees and low-precision rounding decides, so
                # a resumed run could settle on another backend than the uninterrupted one.
                return regularized_loss(self.model, per_example_cross_entropy, x, y, lam=c.lam,
                                        penalty=c.method,
                                        backend="auto" if c.amp == "none" else "loop")
            return per_example_cross_entropy(self.model(x), y).mean()

    def _scaled_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """fp16: GradScaler refuses closures, so the weights are perturbed around the pass
        (the README's grad-scaler recipe); a step the scaler skips leaves w unperturbed."""
        assert self.scaler is not None
        perturbs = self.config.method.startswith("pgd-")  # a PerturbedOptimizer
        self.opt.zero_grad()
        if perturbs:
            self.opt.perturb()
        loss = self._loss(x, y)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        if perturbs:
            self.opt.restore()
        return loss.detach().clone()

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Exact train and test accuracy of the current weights (float32 forward pass)."""
        d = self.data
        return {"train_accuracy": accuracy(self.module(d.x_train), d.y_train),
                "test_accuracy": accuracy(self.module(d.x_test), d.y_test)}

    def state_dict(self) -> dict:
        state = {"model": self.module.state_dict(), "optimizer": self.opt.state_dict(),
                 "steps_done": self.steps_done, "last_loss": self.last_loss,
                 "config": asdict(self.config)}
        if self.label_noise is not None:
            state["label_noise"] = self.label_noise.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict()``; raises ``ValueError`` naming the field that does not fit
        (another config, missing entries) before touching the trainer."""
        if not isinstance(state, dict):
            raise ValueError(f"the state is a {type(state).__name__}, not a dict")
        expected = {"model", "optimizer", "steps_done", "last_loss", "config"}
        if self.label_noise is not None:
            expected.add("label_noise")
        if self.scaler is not None:
            expected.add("scaler")
        if state.keys() != expected:
            raise ValueError(f"the state has entries {sorted(state)}, expected {sorted(expected)}")
        diff = _config_diff(state["config"], self.config)
        if diff:
            raise ValueError(f"the state was saved with another config: {diff}")
        check_int("steps_done", state["steps_done"], low=0, high=self.config.steps)
        if state["last_loss"] is not None:
            check_finite("last_loss", state["last_loss"])
        self.module.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.label_noise is not None:
            self.label_noise.load_state_dict(state["label_noise"])
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.steps_done = state["steps_done"]
        self.last_loss = state["last_loss"]


# ------------------------------------------------------------------ checkpoints

# The format's name predates this module (the trainer lived in noisereg.train): kept, so that
# checkpoints written before still load.
_MAGIC = b"noisereg.train checkpoint v1\n"


class CheckpointError(ValueError):
    """A checkpoint that is refused: damaged, changed, of another config, or holding code.

    >>> import pathlib, tempfile
    >>> from noisereg.trainer import CheckpointError, TrainConfig, Trainer, load_checkpoint
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "not-a-checkpoint.pt"
    >>> _ = path.write_bytes(b"import os")
    >>> trainer = Trainer(TrainConfig(steps=1, n_train=32, n_test=16, batch_size=8, device="cpu"))
    >>> try:
    ...     load_checkpoint(trainer, path)
    ... except CheckpointError as err:
    ...     print("refused")
    refused
    """


def save_checkpoint(trainer: Trainer, path: Path) -> None:
    """Write ``MAGIC``, the sha256 of the rest, the config as JSON, then the state (atomic).

    >>> import pathlib, tempfile, torch
    >>> from noisereg.trainer import TrainConfig, Trainer, load_checkpoint, save_checkpoint
    >>> config = TrainConfig(steps=4, n_train=32, n_test=16, batch_size=8, device="cpu")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.pt"
    >>> trainer = Trainer(config)
    >>> _ = trainer.step(), trainer.step()  # interrupted after 2 of 4 steps
    >>> save_checkpoint(trainer, path)
    >>> resumed = Trainer(config)
    >>> load_checkpoint(resumed, path)
    >>> _, _ = trainer.fit(), resumed.fit()
    >>> all(torch.equal(a, b) for a, b in zip(trainer.model.parameters(),
    ...                                        resumed.model.parameters()))
    True
    """
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    header = json.dumps({"config": asdict(trainer.config)}, sort_keys=True, allow_nan=False)
    body = header.encode() + b"\n" + buffer.getvalue()
    atomic_write_bytes(path, _MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)


def load_checkpoint(trainer: Trainer, path: Path) -> None:
    """Verify the checksum and the config, then load the state with ``weights_only=True``;
    anything wrong raises ``CheckpointError`` naming ``path`` and what differs (see
    :func:`save_checkpoint` for a round trip).

    >>> import pathlib, tempfile
    >>> from noisereg.trainer import CheckpointError, TrainConfig, Trainer, load_checkpoint
    >>> trainer = Trainer(TrainConfig(steps=1, n_train=32, n_test=16, batch_size=8, device="cpu"))
    >>> try:
    ...     load_checkpoint(trainer, pathlib.Path(tempfile.mkdtemp()) / "missing.pt")
    ... except CheckpointError as err:
    ...     print(str(err).split(": ", 1)[1].split(" (")[0])
    unreadable checkpoint
    """
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: unreadable checkpoint ({one_line(err)})") from None
    if not data.startswith(_MAGIC):
        raise CheckpointError(f"{path}: unreadable checkpoint (not a noisereg.train checkpoint "
                              "of format v1); delete it to start over")
    digest, _, body = data[len(_MAGIC):].partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise CheckpointError(f"{path}: checksum mismatch: the checkpoint was changed or damaged "
                              "after it was written; delete it to start over")
    header, _, payload = body.partition(b"\n")
    try:
        config = json.loads(header)["config"]
    except (ValueError, TypeError, KeyError):  # well-formed checksum, forged header
        raise CheckpointError(f"{path}: unreadable checkpoint (no config in its header)") from None
    diff = _config_diff(config, trainer.config)
    if diff:
        raise CheckpointError(f"{path}: written with another config: {diff}; rerun with the "
                              "checkpoint's values or use another --out")
    try:
        # Onto this rank's device: rank 0 wrote it from its own GPU.
        state = torch.load(io.BytesIO(payload), map_location=trainer.device, weights_only=True)
    except Exception as err:  # weights_only refusals and damaged archives raise several types
        raise CheckpointError(f"{path}: refused checkpoint: its state holds more than tensors "
                              f"and plain values or is damaged ({one_line(err)})") from None
    try:
        trainer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: refused checkpoint: {one_line(err)}") from None
