"""Train an MLP with any method of the library, on one process or under DDP.

The command-line face of :mod:`noisereg.trainer` (which holds the training loop)::

    python -m noisereg.train --method pgd-layerwise --sigma 0.05 --steps 300 --out runs/a
    torchrun --nproc_per_node=2 -m noisereg.train --method pegr --lam 1e-3 --out runs/b

Methods: ``gd`` (plain SGD), ``pgd-global`` / ``pgd-layerwise`` (PerturbedOptimizer),
``anti-pgd`` (AntiPGD), ``label-noise`` (LabelNoise flips), ``pegr`` / ``gr`` (penalties).

The model and the data live on ``--device`` (default: ``cuda`` when available, else ``cpu``;
``cuda`` is the current CUDA device, ``cuda:LOCAL_RANK`` under ``torchrun``). ``--amp bf16`` or
``fp16`` runs the forward pass under ``torch.autocast`` (fp16 with a ``torch.amp.GradScaler``,
whose state the checkpoint keeps); an ``--amp`` the device cannot run is refused up front.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the ranks join a process group (NCCL on CUDA, gloo on
the CPU) and the trainer runs DDP as :mod:`noisereg.trainer` describes: the run equals one
process on the global batch. Rank 0 writes an atomic checkpoint (the format of
:func:`noisereg.trainer.save_checkpoint`) every ``--checkpoint-every`` steps and ``--resume``
continues from it with the same numbers as an uninterrupted run; a checkpoint that was changed,
belongs to another config or holds anything but tensors and plain values is refused with one
line naming the file and the field.

``metrics.json`` holds the config, the steps done, the last loss and the exact train and test
accuracies (:func:`noisereg.metrics.accuracy`); the accuracies are also printed as one JSON line.

Exit codes: 0 done; 2 bad input (an option, ``--out``, a refused checkpoint), before anything
is written; 1 a failure while running, e.g. a non-finite loss, which is recorded in
``metrics.json`` (``"diverged": true``, the message in ``"failure"``, the metrics null).
Every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from noisereg._atomic import write_json
from noisereg._errors import one_line
from noisereg._validate import check_int
from noisereg.data.images import DATASETS
from noisereg.trainer import (
    AMPS,
    DEVICES,
    MAX_SEED,
    MAX_STEPS,
    METHODS,
    TrainConfig,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)  # one line, no usage block; main() exits 2


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 128,64, got {text!r}") from None


def _directory(text: str) -> Path:
    if not text:
        raise argparse.ArgumentTypeError("expected a directory path, got ''")
    return Path(text)


_HELP = {
    "method": "training method", "dataset": "bundled data set",
    "widths": "hidden widths, comma separated", "n_train": "training examples",
    "n_test": "test examples", "steps": f"SGD steps (at most {MAX_STEPS})",
    "batch_size": "global batch size (at most n_train)", "lr": "learning rate",
    "momentum": "SGD momentum, in [0, 1)", "sigma": "weight-noise std (pgd-*, anti-pgd)",
    "lam": "penalty weight (pegr, gr)", "flip": "label-flip probability (label-noise)",
    "seed": f"seed of data split, init, batches and noise, in [0, {MAX_SEED}]",
    "device": "where the model and data live (cuda: cuda:LOCAL_RANK under torchrun)",
    "amp": "autocast dtype of the forward pass (fp16 with a GradScaler)",
}
_CHOICES = {"method": METHODS, "dataset": DATASETS, "device": DEVICES, "amp": AMPS}


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m noisereg.train", description=__doc__.split("\n")[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for field in fields(TrainConfig):
        name, default = field.name, field.default
        option = f"--{name.replace('_', '-')}"
        if name in _CHOICES:
            p.add_argument(option, choices=_CHOICES[name], default=default, help=_HELP[name])
        elif name == "widths":  # a string default is parsed by ``type`` and shown as typed
            p.add_argument(option, type=_widths, default=",".join(map(str, default)),
                           help=_HELP[name])
        else:
            p.add_argument(option, type=_integer if isinstance(default, int) else _number,
                           default=default, help=_HELP[name])
    p.add_argument("--out", type=_directory, required=True, default=argparse.SUPPRESS,
                   help="directory for checkpoint.pt and metrics.json")
    p.add_argument("--checkpoint-every", type=_integer, default=50,
                   help=f"steps between checkpoints, in [1, {MAX_STEPS}]")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt when it exists")
    return p


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _error(err: BaseException, code: int) -> int:
    print(f"noisereg.train: error: {one_line(err)}", file=sys.stderr)
    return code


def _check_out(out: Path) -> None:
    try:
        is_file = out.exists() and not out.is_dir()
    except OSError as err:  # a name too long, a loop of links, no permission
        raise ValueError(f"--out: cannot use {out} ({err.strerror})") from None
    if is_file:
        raise ValueError(f"--out {out} is a file, not a directory")


def _make_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot create the directory ({one_line(err)})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: the directory is not writable")


def _metrics(trainer: Trainer, failure: str | None) -> dict[str, Any]:
    """``metrics.json``: on a failure the metrics are null and ``diverged`` says why."""
    accuracy = trainer.evaluate() if failure is None else dict.fromkeys(
        ("train_accuracy", "test_accuracy"))
    return {"config": asdict(trainer.config), "steps": trainer.steps_done,
            "final_loss": trainer.last_loss if failure is None else None,
            "diverged": failure is not None, "failure": failure, **accuracy}


def _train(trainer: Trainer, out: Path, checkpoint_every: int) -> int:
    def checkpoint(t: Trainer) -> None:
        if t.rank == 0 and (t.steps_done % checkpoint_every == 0
                            or t.steps_done == t.config.steps):
            save_checkpoint(t, out / "checkpoint.pt")

    try:
        trainer.fit(checkpoint)
    except FloatingPointError as err:
        if trainer.rank == 0:
            write_json(out / "metrics.json", _metrics(trainer, one_line(err)))
        return _error(err, 1)
    if trainer.rank == 0:
        metrics = _metrics(trainer, None)
        write_json(out / "metrics.json", metrics)
        print(json.dumps({k: metrics[k] for k in ("train_accuracy", "test_accuracy")}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
        check_int("checkpoint_every", args.checkpoint_every, low=1, high=MAX_STEPS)
        _check_out(args.out)
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except (_UsageError, ValueError) as err:
        return _error(err, 2)
    if world > 1:
        if config.device == "cuda":  # one GPU per rank of this node
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if config.device == "cuda" else "gloo")
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        try:
            trainer = Trainer(config)
            if args.resume and (args.out / "checkpoint.pt").exists():
                load_checkpoint(trainer, args.out / "checkpoint.pt")
            _make_out(args.out)
        except ValueError as err:
            return _error(err, 2)
        code = _train(trainer, args.out, args.checkpoint_every)
        if code == 0 and trainer.world > 1:
            dist.barrier()  # no rank tears the group down while another still uses it
        return code
    except KeyboardInterrupt:
        print("noisereg.train: interrupted; rerun with --resume", file=sys.stderr)
        return 130
    except Exception as err:  # a failure while running (disk full, ...): one line, never a trace
        print(f"noisereg.train: error: {type(err).__name__}: {one_line(err)}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
