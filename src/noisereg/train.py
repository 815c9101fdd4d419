"""Train an MLP with any method of the library, on one process or under DDP.

    python -m noisereg.train --method pgd-layerwise --sigma 0.05 --steps 300 --out runs/a
    torchrun --nproc_per_node=2 -m noisereg.train --method pegr --lam 1e-3 --out runs/b

Methods: ``gd`` (plain SGD), ``pgd-global`` / ``pgd-layerwise`` (PerturbedOptimizer),
``anti-pgd`` (AntiPGD), ``label-noise`` (LabelNoise flips), ``pegr`` / ``gr`` (penalties).

Under ``torchrun`` (``WORLD_SIZE`` > 1) the ranks join a gloo process group, the model is
wrapped in ``DistributedDataParallel`` and every rank takes rows ``rank::world`` of the same
global batch (drawn from a generator keyed by the seed and the step). Noise is drawn with
``noise_sync="shared"``, so the replicas stay bitwise identical and the run equals one process
on the global batch. Rank 0 writes an atomic checkpoint every ``--checkpoint-every`` steps and
``--resume`` continues from it with the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from noisereg._validate import check_choice, check_int, check_nonnegative, check_positive
from noisereg.data.images import load_split
from noisereg.gradreg import regularized_loss
from noisereg.models.init import generator
from noisereg.models.mlp import MLP
from noisereg.results.store import atomic_write_bytes, write_json

Method = Literal["gd", "pgd-global", "pgd-layerwise", "anti-pgd", "label-noise", "pegr", "gr"]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TrainConfig:
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

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("dataset", self.dataset, ("digits", "mnist5k"))
        for name in ("n_train", "n_test", "steps", "batch_size"):
            check_int(name, getattr(self, name), low=1)
        for w in self.widths:
            check_int("widths", w, low=1)
        check_positive("lr", self.lr)
        check_nonnegative("momentum", self.momentum)
        check_nonnegative("sigma", self.sigma)
        check_nonnegative("lam", self.lam)
        check_nonnegative("flip", self.flip)


def per_example_ce(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs, targets, reduction="none")


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """One method, one model, one optimizer; ``step()`` trains on the next global batch."""

    def __init__(self, config: TrainConfig, model: nn.Module | None = None) -> None:
        import noisereg

        self.config = c = config
        self.rank, self.world = _world()
        if c.batch_size % self.world:
            raise ValueError(f"batch_size ({c.batch_size}) must be divisible by the world size "
                             f"({self.world})")
        self.data = load_split(c.dataset, c.n_train, c.n_test, seed=c.seed)
        self.module = model if model is not None else MLP(
            self.data.num_features, c.widths, self.data.num_classes, seed=c.seed)
        self.model: nn.Module = self.module
        if self.world > 1:
            self.model = nn.parallel.DistributedDataParallel(self.module)
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

    def batch_indices(self, step: int) -> torch.Tensor:
        """The global batch of ``step``: the same on every rank, whatever was run before."""
        gen = generator(self.config.seed * 1_000_003 + step)
        return torch.randperm(self.config.n_train, generator=gen)[:self.config.batch_size]

    def step(self) -> float:
        index = self.batch_indices(self.steps_done)[self.rank::self.world]
        x, y = self.data.x_train[index], self.data.y_train[index]
        if self.label_noise is not None:
            y = self.label_noise(y, shard=(self.rank, self.world))

        def closure() -> torch.Tensor:
            self.opt.zero_grad()
            if self.config.method in ("pegr", "gr"):
                # The penalty is built out of place (autograd.grad with create_graph) and the
                # one backward below goes through the DDP wrapper: the pattern DDP supports.
                loss = regularized_loss(self.model, per_example_ce, x, y, lam=self.config.lam,
                                        penalty=self.config.method)
            else:
                loss = per_example_ce(self.model(x), y).mean()
            loss.backward()
            return loss

        loss = self.opt.step(closure)
        self.steps_done += 1
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        d = self.data
        train = (self.module(d.x_train).argmax(1) == d.y_train).float().mean()
        test = (self.module(d.x_test).argmax(1) == d.y_test).float().mean()
        return {"train_accuracy": float(train), "test_accuracy": float(test)}

    def state_dict(self) -> dict:
        state = {"model": self.module.state_dict(), "optimizer": self.opt.state_dict(),
                 "steps_done": self.steps_done, "config": asdict(self.config)}
        if self.label_noise is not None:
            state["label_noise"] = self.label_noise.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if state["config"] != asdict(self.config):
            raise ValueError("checkpoint was written with another config; refusing to resume")
        self.module.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.label_noise is not None:
            self.label_noise.load_state_dict(state["label_noise"])
        self.steps_done = state["steps_done"]


def save_checkpoint(trainer: Trainer, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(trainer: Trainer, path: Path) -> None:
    try:
        state = torch.load(path, weights_only=False)
    except Exception as err:  # torch raises several types for a damaged file
        raise ValueError(f"{path}: unreadable checkpoint ({err})") from None
    trainer.load_state_dict(state)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m noisereg.train", description=__doc__.split("\n")[0])
    defaults = TrainConfig()
    p.add_argument("--method", choices=METHODS, default=defaults.method)
    p.add_argument("--dataset", choices=("digits", "mnist5k"), default=defaults.dataset)
    p.add_argument("--widths", type=lambda s: tuple(int(w) for w in s.split(",")),
                   default=defaults.widths, help="hidden widths, comma separated")
    for name in ("n_train", "n_test", "steps", "batch_size", "seed"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    for name in ("lr", "momentum", "sigma", "lam", "flip"):
        p.add_argument(f"--{name}", type=float, default=getattr(defaults, name))
    p.add_argument("--out", type=Path, required=True, help="directory for checkpoint and metrics")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--resume", action="store_true")
    return p


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    try:
        config = TrainConfig(**fields)
        check_int("checkpoint_every", args.checkpoint_every, low=1)
    except ValueError as err:
        print(f"noisereg.train: error: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("gloo")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        trainer = Trainer(config)
        checkpoint = args.out / "checkpoint.pt"
        if args.resume and checkpoint.exists():
            load_checkpoint(trainer, checkpoint)
        loss = None  # stays None when a finished run is resumed
        while trainer.steps_done < config.steps:
            loss = trainer.step()
            done = trainer.steps_done
            if trainer.rank == 0 and (done % args.checkpoint_every == 0 or done == config.steps):
                save_checkpoint(trainer, checkpoint)
        if trainer.rank == 0:
            accuracy = trainer.evaluate()
            write_json(args.out / "metrics.json", {"config": asdict(config), "final_loss": loss,
                                                   "steps": trainer.steps_done, **accuracy})
            print(json.dumps(accuracy))
        return 0
    except KeyboardInterrupt:
        print("noisereg.train: interrupted; rerun with --resume", file=sys.stderr)
        return 130
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
