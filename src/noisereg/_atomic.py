"""Atomic file writes: readers see the old file or the new one, never a part (temp file in the
same folder, fsync, rename), and the cleanup of temp files a killed writer left behind."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

# The names tempfile.mkstemp gives in atomic_write_bytes: ".<name>.<8 random chars>.tmp".
_TEMP = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def _umask() -> int:
    # The umask can only be read by setting it; nothing creates files between the two calls.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The file gets the mode of a plain ``open`` (0o666 less the umask), not mkstemp's 0o600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno and not err.filename:  # name the file
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temp files a killed writer left in ``folder``; call it holding the lock."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if _TEMP.fullmatch(p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, dump_json(value))
