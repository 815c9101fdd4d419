"""The training entry point: checkpoint resume is bitwise exact for every method; torchrun works."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from noisereg.train import METHODS, TrainConfig, Trainer, load_checkpoint, main, save_checkpoint


def _config(method: str) -> TrainConfig:
    return TrainConfig(method=method, steps=6, batch_size=32, widths=(16,), n_train=128,
                       n_test=32, momentum=0.9, lam=0.01)


@pytest.mark.parametrize("method", METHODS)
def test_resume_from_checkpoint_is_bitwise_the_uninterrupted_run(tmp_path: Path, method) -> None:
    straight = Trainer(_config(method))
    for _ in range(6):
        straight.step()
    first = Trainer(_config(method))
    for _ in range(3):
        first.step()
    save_checkpoint(first, tmp_path / "ckpt.pt")
    resumed = Trainer(_config(method))  # a fresh process would start exactly like this
    load_checkpoint(resumed, tmp_path / "ckpt.pt")
    for _ in range(3):
        resumed.step()
    for name, value in straight.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[name], value), f"{method}: {name}"


def test_checkpoint_of_another_config_or_damaged_file_is_refused(tmp_path: Path) -> None:
    trainer = Trainer(_config("gd"))
    save_checkpoint(trainer, tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match="another config"):
        load_checkpoint(Trainer(_config("pegr")), tmp_path / "ckpt.pt")
    (tmp_path / "ckpt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable checkpoint"):
        load_checkpoint(trainer, tmp_path / "ckpt.pt")


@pytest.mark.parametrize(("argv", "message"), [
    (["--steps", "0"], "steps must be in [1, inf]"),
    (["--lr", "-1"], "lr must be > 0"),
    (["--checkpoint-every", "0"], "checkpoint_every must be in [1, inf]"),
])
def test_bad_arguments_exit_2(tmp_path: Path, capsys, argv, message) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_torchrun_two_ranks_trains_and_writes_metrics(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "noisereg.train",
           "--method", "pgd-layerwise", "--steps", "4", "--batch-size", "32", "--widths", "16",
           "--n-train", "128", "--n-test", "32", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": str(torchrun.parent)})
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 4 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert (tmp_path / "checkpoint.pt").is_file()


def test_resuming_a_finished_run_rewrites_the_same_accuracy(tmp_path: Path, capsys) -> None:
    argv = ["--steps", "3", "--batch-size", "16", "--widths", "8", "--n-train", "64",
            "--n-test", "32", "--out", str(tmp_path)]
    assert main(argv) == 0
    first = json.loads((tmp_path / "metrics.json").read_text())
    assert main([*argv, "--resume"]) == 0
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert again["steps"] == 3 and again["final_loss"] is None
    assert again["test_accuracy"] == first["test_accuracy"]
