"""Speed of per-example gradient regularization (issue 5): a PEGR training step with the ghost
backend against a plain step and against torch.func's vmap, and a scaling table (step time and
peak memory against batch size and width) for plots: :func:`scaling_table`.

Ghost norms make Linear layers nearly free (no per-example gradient), while a convolution's
per-example weight gradient costs about its own weight gradient: a ghost PEGR step costs ~1.5-2x
a plain step on MLPs but ~4x on conv-heavy nets, where vmap is only ~1.4x slower than ghost.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from noisereg._seeding import torch_generator
from noisereg.gradreg import regularized_loss
from noisereg.lab.bench import Target, side_by_side
from noisereg.metrics import per_example_cross_entropy
from noisereg.models.init import he_init_
from noisereg.models.mlp import MLP

LAM = 1e-3


def small_cnn(seed: int = 0) -> nn.Module:
    """The CNN of PyTorch's MNIST example without dropout (1x28x28 -> conv 32 -> conv 64 ->
    max-pool -> linear 128 -> linear 10; 1.2M parameters, 93% of them in the first linear)."""
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, device="meta"), nn.ReLU(), nn.Conv2d(32, 64, 3, device="meta"),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(9216, 128, device="meta"), nn.ReLU(),
        nn.Linear(128, 10, device="meta"))
    return he_init_(model, torch_generator(seed, "init"))


def _batch(shape: tuple[int, ...], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch_generator(seed, "data")
    return torch.rand(shape, generator=gen), torch.randint(0, 10, shape[:1], generator=gen)


def _steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
           backends: Sequence[str]) -> dict[str, Callable[[], None]]:
    """One SGD training step per side: ``plain`` (mean loss) or PEGR with a backend."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step(backend: str) -> Callable[[], None]:
        def run() -> None:
            opt.zero_grad()
            if backend == "plain":
                loss = per_example_cross_entropy(model(x), y).mean()
            else:
                loss = regularized_loss(model, per_example_cross_entropy, x, y, lam=LAM,
                                        backend=backend)
            loss.backward()
            opt.step()
        return run

    return {b: step(b) for b in backends}


def _ratio(model: nn.Module, shape: tuple[int, ...], slow: str, fast: str,
           repeats: int = 7) -> float:
    x, y = _batch(shape)
    times = side_by_side(_steps(model, x, y, (slow, fast)), repeats=repeats, warmup=2)
    return times[slow] / times[fast]


def _peak_rss_mb(fn: Callable[[], Any]) -> float:
    """Peak resident memory during ``fn()`` above the resident memory before it, in MB (Linux
    /proc; NaN elsewhere). Exact for tensors that glibc maps and unmaps directly, hence the fixed
    mmap threshold set by :func:`scaling_table` for the measuring process."""
    status = Path("/proc/self/status")
    if not status.exists():
        return float("nan")

    def read(field: str) -> float:
        return int(re.search(rf"{field}:\s+(\d+)", status.read_text()).group(1)) / 1024

    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    before = read("VmRSS")
    fn()
    return read("VmHWM") - before


def _mlp_configs(batch_sizes: Sequence[int], widths: Sequence[int],
                 backends: Sequence[str]) -> Iterator[tuple[int, int, nn.Module, dict]]:
    for width in widths:
        model = MLP(784, [width, width], 10, seed=0)
        for batch in batch_sizes:
            x, y = _batch((batch, 784))
            yield width, batch, model, _steps(model, x, y, backends)


def memory_rows(batch_sizes: Sequence[int], widths: Sequence[int],
                backends: Sequence[str]) -> list[float]:
    """Peak memory (MB) of one step after a warm-up step, in the order of :func:`scaling_table`."""
    peaks = []
    for _, _, _, steps in _mlp_configs(batch_sizes, widths, backends):
        for b in backends:
            steps[b]()
            peaks.append(_peak_rss_mb(steps[b]))
    return peaks


def scaling_table(batch_sizes: Sequence[int] = (16, 32, 64, 128),
                  widths: Sequence[int] = (128, 256, 512),
                  backends: Sequence[str] = ("plain", "ghost", "vmap"),
                  repeats: int = 5) -> list[dict[str, Any]]:
    """PEGR step time and peak memory on MLPs 784-width-width-10 for every batch size, width and
    backend (``plain`` = an SGD step without penalty), for plots.

    Rows: ``{"backend", "batch", "width", "params", "seconds", "peak_mb"}``: median seconds per
    step (:func:`side_by_side`) and the peak resident memory of a step above the memory held
    between steps (parameters, previous gradients), measured in a subprocess with a fixed glibc
    mmap threshold so that freed tensors leave the resident set. The defaults take about a minute
    on 2 cores (vmap dominates); ghost memory grows with batch x width, vmap's with
    batch x parameters.
    """
    code = ("import json; from noisereg.lab.bench.gradreg import memory_rows; "
            f"print(json.dumps(memory_rows({list(batch_sizes)}, {list(widths)}, "
            f"{list(backends)})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
    peaks = iter(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = []
    for width, batch, model, steps in _mlp_configs(batch_sizes, widths, backends):
        times = side_by_side(steps, repeats=repeats, warmup=1)
        params = sum(p.numel() for p in model.parameters())
        rows += [{"backend": b, "batch": batch, "width": width, "params": params,
                  "seconds": times[b], "peak_mb": next(peaks)} for b in backends]
    return rows


TARGETS = [
    Target("pegr-ghost-step-vs-plain-mlp",
           "PEGR training step (ghost norms, one forward, double backprop) over a plain SGD step: "
           "MLP 784-512-512-10, batch 128",
           "<=", 2.0, "x plain",
           lambda: _ratio(MLP(784, [512, 512], 10, seed=0), (128, 784), "ghost", "plain")),
    Target("pegr-vmap-vs-ghost-mlp",
           "PEGR step with torch.func vmap(grad) per-example gradients over the ghost step: "
           "MLP 784-512-512-10, batch 128",
           ">=", 50.0, "x ghost",
           lambda: _ratio(MLP(784, [512, 512], 10, seed=0), (128, 784), "vmap", "ghost",
                          repeats=5)),
    Target("pegr-vmap-vs-ghost-cnn",
           "PEGR step with vmap over the ghost step: the CNN of PyTorch's MNIST example, "
           "1x28x28, batch 64. Per-example conv weight gradients cost what vmap pays (a conv-only "
           "CNN gives ~1.4x); ghost wins on the linear layers",
           ">=", 3.0, "x ghost", lambda: _ratio(small_cnn(), (64, 1, 28, 28), "vmap", "ghost",
                                                repeats=5)),
]
