"""The training entry point: checkpoint resume is bitwise exact for every method; torchrun
works and reports the global loss; a diverging run is recorded; --help shows the defaults."""

import json
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from noisereg.train import main
from noisereg.trainer import METHODS, TrainConfig, Trainer, load_checkpoint, save_checkpoint


def _config(method: str, amp: str = "none") -> TrainConfig:
    # On the CPU, where every kernel is deterministic: a resume must then be bitwise.
    return TrainConfig(method=method, steps=6, batch_size=32, widths=(16,), n_train=128,
                       n_test=32, momentum=0.9, lam=0.01, device="cpu", amp=amp)


# Every method in float32; under autocast the noisy methods, and fp16's GradScaler state.
RESUMED = [(m, "none") for m in METHODS] + [("anti-pgd", "bf16"), ("pegr", "bf16"), ("gr", "bf16"),
                                             ("pgd-layerwise", "fp16"), ("label-noise", "fp16")]


@pytest.mark.parametrize(("method", "amp"), RESUMED)
def test_resume_from_checkpoint_is_bitwise_the_uninterrupted_run(tmp_path: Path, method,
                                                                 amp) -> None:
    straight = Trainer(_config(method, amp))
    for _ in range(6):
        straight.step()
    first = Trainer(_config(method, amp))
    for _ in range(3):
        first.step()
    save_checkpoint(first, tmp_path / "ckpt.pt")
    resumed = Trainer(_config(method, amp))  # a fresh process would start exactly like this
    load_checkpoint(resumed, tmp_path / "ckpt.pt")
    for _ in range(3):
        resumed.step()
    for name, value in straight.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[name], value), f"{method}: {name}"


def test_torchrun_two_ranks_writes_the_global_batch_loss(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "noisereg.train",
           "--method", "pgd-layerwise", "--steps", "4", "--batch-size", "32", "--widths", "16",
           "--n-train", "128", "--n-test", "32", "--device", "cpu", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": str(torchrun.parent)})
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 4 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert (tmp_path / "checkpoint.pt").is_file()
    # One process on the same global batch (shared noise: the same algorithm) gives the loss
    # of the whole batch; rank 0 alone sees only half of it.
    single = Trainer(TrainConfig(method="pgd-layerwise", steps=4, batch_size=32, widths=(16,),
                                 n_train=128, n_test=32, device="cpu"))
    losses = [single.step() for _ in range(4)]
    assert metrics["final_loss"] == pytest.approx(losses[-1], rel=1e-5)


def test_resuming_a_finished_run_rewrites_the_same_metrics(tmp_path: Path, capsys) -> None:
    argv = ["--steps", "3", "--batch-size", "16", "--widths", "8", "--n-train", "64",
            "--n-test", "32", "--out", str(tmp_path)]
    assert main(argv) == 0
    first = json.loads((tmp_path / "metrics.json").read_text())
    assert main([*argv, "--resume"]) == 0
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert again == first and first["steps"] == 3 and first["diverged"] is False


def test_a_diverging_run_records_the_failure_and_exits_1(tmp_path: Path, capsys) -> None:
    # lr = 1e38 sends the float32 weights to inf after the first step: the second loss is nan.
    argv = ["--lr", "1e38", "--steps", "3", "--batch-size", "16", "--widths", "8",
            "--n-train", "64", "--n-test", "32", "--out", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diverged" in err and "Traceback" not in err

    def refuse(constant: str) -> None:
        raise AssertionError(f"metrics.json holds {constant}, which is not JSON")

    metrics = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics["diverged"] is True and "nan" in metrics["failure"]
    assert metrics["final_loss"] is None and metrics["test_accuracy"] is None
    assert metrics["steps"] == 1


def test_help_shows_every_option_with_its_default(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    # One chunk per option: from its "--name" at the start of a line to the next one.
    chunks = {m.group(1): " ".join(m.group(2).split()) for m in re.finditer(
        r"^  (--[a-z-]+)(.*?)(?=^  --|\Z)", text, re.M | re.S)}
    for field in fields(TrainConfig):
        shown = (",".join(map(str, field.default)) if isinstance(field.default, tuple)
                 else str(field.default))
        chunk = chunks[f"--{field.name.replace('_', '-')}"]
        assert chunk.endswith(f"(default: {shown})"), chunk
    assert chunks["--checkpoint-every"].endswith("(default: 50)")
    assert chunks["--resume"].endswith("(default: False)")
    assert "directory" in chunks["--out"]
