"""One writer per results folder: an exclusive ``flock`` on ``DIR/.noisereg.lock``.

The kernel releases a ``flock`` when its holder dies, however it dies, so a lock file left by
a killed run is stale by construction and the next writer takes it over. The file holds the
holder's pid and host, only to name them to a second writer, which is refused at once
(:class:`LockedError`). The lock is reentrant within a process (``reproduce`` holds it around
every experiment and the report), and the file is removed on release so a finished run leaves
the folder as it found it.

A parallel runner keeps this single writer: workers compute per-seed records and return them,
the parent process, which holds the lock, writes them.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from noisereg.lab.results.store import ResultsError

LOCK_NAME = ".noisereg.lock"
_held: dict[Path, int] = {}  # resolved folder -> nesting depth in this process


class LockedError(ResultsError):
    """Another process writes the results folder."""


class UnwritableError(ResultsError):
    """The results folder cannot be created or written (a file, read-only, bad name...)."""


def _acquire(path: Path) -> int:
    """An open descriptor of ``path`` holding its exclusive flock."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise LockedError(f"{path.parent}: results folder in use by {holder}; wait for it "
                              "to finish or choose another --out") from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the previous holder may have removed the file between our open and our flock
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextmanager
def writer_lock(folder: Path) -> Iterator[Path]:
    """Hold the exclusive writer lock of ``folder`` (created if missing) inside the block.

    Raises :class:`LockedError` when another process holds it, :class:`UnwritableError` when
    ``folder`` cannot be made or written. On exit the lock file is removed, and ``folder`` too
    when this call created it and it is empty.
    """
    folder = Path(folder)
    try:
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UnwritableError(f"{folder}: not a directory; give a folder for the results") \
            from None
    except OSError as err:
        raise UnwritableError(f"{folder}: cannot create the results folder: "
                              f"{err.strerror}") from None
    key = folder.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    path = folder / LOCK_NAME
    try:
        fd = _acquire(path)
    except BaseException as err:
        if created:
            folder.rmdir()
        if isinstance(err, OSError):
            raise UnwritableError(f"{folder}: cannot write in the results folder: "
                                  f"{err.strerror}") from None
        raise
    _held[key] = 1
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield folder
    finally:
        del _held[key]
        path.unlink(missing_ok=True)  # still ours: unlinked before the flock is released
        os.close(fd)
        if created:
            with suppress(OSError):  # not empty: results were written
                folder.rmdir()
