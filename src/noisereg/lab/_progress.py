"""Progress bars that stay silent when stdout is not a terminal or when ``--quiet`` is given."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_quiet = False


@contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Silence every progress bar inside the block."""
    global _quiet
    previous, _quiet = _quiet, enabled
    try:
        yield
    finally:
        _quiet = previous


def bar(iterable: Iterable[T], *, desc: str, total: int | None = None, leave: bool = False) -> tqdm:
    """A tqdm bar over ``iterable``; disabled when quiet or when stdout is not a terminal."""
    disable = _quiet or not sys.stdout.isatty()
    return tqdm(iterable, desc=desc, total=total, leave=leave, disable=disable, dynamic_ncols=True)


def silence() -> None:
    """Silence every progress bar of this process for good (a worker process: no terminal)."""
    global _quiet
    _quiet = True
