"""Checkpoints run no code, carry a checksum and their config, and are refused (exit 2, one
line naming the file and what differs) when damaged, changed or of another run."""

import dataclasses
import hashlib
import io
from pathlib import Path

import pytest
import torch

from noisereg.train import main
from noisereg.trainer import CheckpointError, TrainConfig, Trainer, load_checkpoint

ARGV = ["--steps", "4", "--checkpoint-every", "2", "--batch-size", "16", "--widths", "8",
        "--n-train", "64", "--n-test", "32", "--method", "anti-pgd"]


class _Opens:
    """Unpickling this calls ``open(marker, "w")``: code run from a file would create it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _run(tmp_path: Path, capsys, *extra: str) -> None:
    assert main([*ARGV, *extra, "--out", str(tmp_path)]) == 0
    capsys.readouterr()


def _refused(tmp_path: Path, capsys, *extra: str) -> str:
    """Resume with ``extra``: exit 2, one line, the folder unchanged; the message."""
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main([*ARGV, *extra, "--out", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(tmp_path / "checkpoint.pt") in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    return err


def _parts(path: Path) -> tuple[bytes, bytes, bytes, bytes]:
    """magic line, digest, header line, payload: the layout documented in noisereg.trainer."""
    magic, digest, header, payload = path.read_bytes().split(b"\n", 3)
    return magic, digest, header, payload


def _write(path: Path, magic: bytes, header: bytes, payload: bytes, digest: bytes | None = None):
    body = header + b"\n" + payload
    digest = hashlib.sha256(body).hexdigest().encode() if digest is None else digest
    path.write_bytes(magic + b"\n" + digest + b"\n" + body)


def test_a_pickle_that_runs_code_is_refused_and_never_run(tmp_path: Path, capsys) -> None:
    marker, attacked, real = tmp_path / "marker", tmp_path / "attacked", tmp_path / "real"
    attacked.mkdir()
    # The attack of issue 11: a plain torch.save file whose unpickling calls open().
    torch.save({"model": _Opens(marker), "steps_done": 0}, attacked / "checkpoint.pt")
    assert "unreadable checkpoint" in _refused(attacked, capsys)
    # The same payload in a well-formed file with a correct checksum: weights_only refuses it.
    _run(real, capsys)
    magic, _, header, _ = _parts(real / "checkpoint.pt")
    buffer = io.BytesIO()
    torch.save({"model": _Opens(marker)}, buffer)
    _write(attacked / "checkpoint.pt", magic, header, buffer.getvalue())
    assert "holds more than tensors" in _refused(attacked, capsys)
    assert not marker.exists()


def test_a_flipped_byte_or_an_edited_steps_done_fails_the_checksum(tmp_path: Path,
                                                                   capsys) -> None:
    _run(tmp_path, capsys)
    path = tmp_path / "checkpoint.pt"
    original = path.read_bytes()
    flipped = bytearray(original)
    flipped[len(original) // 2] ^= 0x01
    path.write_bytes(bytes(flipped))
    assert "checksum mismatch" in _refused(tmp_path, capsys)
    # steps_done edited inside the state, the rest of the file as written.
    path.write_bytes(original)
    magic, digest, header, payload = _parts(path)
    state = torch.load(io.BytesIO(payload), weights_only=True)
    state["steps_done"] = 1
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write(path, magic, header, buffer.getvalue(), digest)
    assert "checksum mismatch" in _refused(tmp_path, capsys)
    path.write_bytes(original[:100])  # truncated
    assert "checksum mismatch" in _refused(tmp_path, capsys)


@pytest.mark.parametrize(("extra", "field"), [
    (["--lr", "0.2"], "lr is 0.1 in the checkpoint, 0.2 in this run"),
    (["--seed", "3"], "seed is 0 in the checkpoint, 3 in this run"),
    (["--widths", "8,8"], "widths is [8] in the checkpoint, [8, 8] in this run"),
    (["--amp", "bf16"], "amp is 'none' in the checkpoint, 'bf16' in this run"),
])
def test_a_checkpoint_of_another_config_is_refused_naming_the_field(tmp_path: Path, capsys,
                                                                    extra, field) -> None:
    _run(tmp_path, capsys)
    assert field in _refused(tmp_path, capsys, *extra)


def test_a_checksummed_state_that_does_not_fit_is_refused_before_loading(tmp_path: Path,
                                                                        capsys) -> None:
    # A file rewritten with a correct checksum (forged, or by another version of the trainer)
    # but whose state lacks an entry or holds an impossible step count.
    _run(tmp_path, capsys)
    path = tmp_path / "checkpoint.pt"
    magic, _, header, payload = _parts(path)
    state = torch.load(io.BytesIO(payload), weights_only=True)
    for forged, message in [({k: v for k, v in state.items() if k != "optimizer"}, "entries"),
                            ({**state, "steps_done": 10**6}, "steps_done must be in [0, 4]")]:
        buffer = io.BytesIO()
        torch.save(forged, buffer)
        _write(path, magic, header, buffer.getvalue())
        assert message in _refused(tmp_path, capsys)
    _write(path, magic, b"{}", payload)
    assert "no config" in _refused(tmp_path, capsys)


def test_library_refusals_are_checkpoint_errors_naming_the_file(tmp_path: Path) -> None:
    config = TrainConfig(steps=2, batch_size=16, widths=(8,), n_train=64, n_test=32)
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: unreadable checkpoint"):
        load_checkpoint(Trainer(config), tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_checkpoint(Trainer(config), tmp_path)  # a directory
    other = Trainer(dataclasses.replace(config, lr=0.2))
    with pytest.raises(ValueError, match=r"another config: lr is 0\.2 .*, 0\.1 in this run"):
        Trainer(config).load_state_dict(other.state_dict())
