"""Fixtures of the results-folder tests: a folder holding a finished toy run, and its files."""

from collections.abc import Callable
from pathlib import Path

import pytest

from noisereg.lab.cli import main


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def tree() -> Callable[[Path], dict[str, bytes]]:
    """Every file under a folder (hidden ones too) with its bytes."""
    return _tree


@pytest.fixture
def finished(toy_registry, tmp_path, capsys) -> Path:
    """A results folder holding a finished toy run (3 seeds) and its report."""
    out = tmp_path / "out"
    assert main(["reproduce", "--out", str(out)]) == 0
    capsys.readouterr()
    return out


@pytest.fixture
def one_line_error(capsys) -> Callable[[], str]:
    """The error printed since the last call, checked to be one ``noisereg: error:`` line."""
    def read() -> str:
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("noisereg: error: "), err
        return err
    return read
