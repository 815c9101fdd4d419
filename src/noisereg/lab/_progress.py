"""Progress bars that stay silent when stdout is not a terminal or when ``--quiet`` is given,
and the time left of a run of units (:class:`Eta`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
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
    return tqdm(iterable, desc=desc, total=total, leave=leave, disable=disable, dynamic_ncols=True,
                smoothing=0)  # the time left from the mean rate so far, as Eta


def silence() -> None:
    """Silence every progress bar of this process for good (a worker process: no terminal)."""
    global _quiet
    _quiet = True


class Eta:
    """Units done out of ``total`` and the time left, estimated from the mean wall time per
    unit finished so far: ``elapsed * (total - done) / done``.

    Wall time, not the units' own seconds: with N workers the units finish about N times as
    fast, and the estimate follows. It is exact for units of equal length run one after
    another; units of unequal length (the experiments' differ by 100x) make it a guide that
    sharpens as the run goes on. The progress bars estimate the same way (tqdm's
    ``smoothing=0``); tqdm's default follows the last few units, which jumps from one
    experiment's units to the next.
    """

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"total must be an integer >= 0, got {total!r}")
        self.total, self.done, self._clock = total, 0, clock
        self._start = clock()

    def update(self, units: int = 1) -> None:
        """Count ``units`` more as done."""
        if not 0 <= units <= self.total - self.done:
            raise ValueError(f"units must be in [0, {self.total - self.done}], got {units}")
        self.done += units

    def left(self) -> float | None:
        """Seconds left; None before the first unit is done."""
        if self.done == 0:
            return None
        return (self._clock() - self._start) * (self.total - self.done) / self.done

    def __str__(self) -> str:
        left = self.left()
        text = f"{self.done}/{self.total} units"
        return text if left is None or self.done == self.total else f"{text}, ~{_span(left)} left"


def _span(seconds: float) -> str:
    """A duration at the precision an estimate has: 45 s, 8 min, 1.5 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
