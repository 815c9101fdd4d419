"""Two gloo ranks on loopback: shared noise keeps DDP replicas bitwise identical and equal to one
process on the global batch; per-rank noise gives each rank its own perturbation."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from noisereg.models.mlp import MLP
from noisereg.optim import AntiPGD, PerturbedOptimizer

STEPS, WORLD = 4, 2


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(16, 5, generator=gen, dtype=torch.float64), torch.randn(
        16, 3, generator=gen, dtype=torch.float64)


def _make(kind: str, module: nn.Module) -> torch.optim.Optimizer:
    if kind == "anti":
        return AntiPGD(module.parameters(), torch.optim.SGD, sigma=0.05, seed=1, lr=0.1)
    return PerturbedOptimizer(module.parameters(), torch.optim.SGD, sigma=0.05, seed=1, lr=0.1,
                              momentum=0.9, mode="layerwise" if kind == "layer" else "global",
                              noise_sync="per_rank" if kind == "per_rank" else "shared")


def _train(kind: str, rank: int, world: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Train; return the final weights and the perturbed weights every step's closure saw."""
    x, y = _data()
    module = MLP(5, [8], 3, seed=0).double()
    model = nn.parallel.DistributedDataParallel(module) if world > 1 else module
    opt = _make(kind, module)
    seen = []
    for _ in range(STEPS):
        def closure() -> torch.Tensor:
            seen.append(torch.cat([p.detach().reshape(-1) for p in module.parameters()]))
            opt.zero_grad()
            loss = (model(x[rank::world]) - y[rank::world]).pow(2).mean()
            loss.backward()
            return loss
        opt.step(closure)
    return [p.detach().clone() for p in module.parameters()], seen


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        results = {kind: _train(kind, rank, WORLD)
                   for kind in ("global", "layer", "anti", "per_rank")}
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_stay_identical_and_match_one_process(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for kind in ("global", "layer", "anti", "per_rank"):
        (w0, seen0), (w1, seen1) = ranks[0][kind], ranks[1][kind]
        assert all(torch.equal(a, b) for a, b in zip(w0, w1)), kind  # replicas in sync
        if kind == "per_rank":  # independent perturbations, restored before the step
            assert not any(torch.equal(a, b) for a, b in zip(seen0, seen1))
            continue
        assert all(torch.equal(a, b) for a, b in zip(seen0, seen1)), kind
        single, _ = _train(kind, 0, 1)  # one process on the global batch
        for a, b in zip(w0, single):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
