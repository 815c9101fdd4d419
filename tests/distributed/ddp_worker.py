"""One rank of a DDP run: ``python ddp_worker.py OUT STEPS METHOD...`` with RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT in the environment. Trains each method in turn and saves the
rank's final parameters."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from noisereg.trainer import TrainConfig, Trainer


def config(method: str, steps: int) -> TrainConfig:
    return TrainConfig(method=method, steps=steps, batch_size=64, widths=(32,), n_train=256,
                       n_test=64, sigma=0.05, lr=0.1, momentum=0.9, lam=0.01, flip=0.3,
                       device="cpu")  # gloo on the CPU, whatever the machine has


if __name__ == "__main__":
    out, steps, methods = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    dist.init_process_group("gloo")
    for method in methods:
        trainer = Trainer(config(method, steps))
        for _ in range(steps):
            trainer.step()
        state = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}
        torch.save(state, out / f"{method}-rank{dist.get_rank()}.pt")
    dist.destroy_process_group()
