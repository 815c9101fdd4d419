"""Matplotlib with the file-only Agg backend, and atomic PNG saving."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from noisereg.results.store import atomic_write_bytes


def save(fig: plt.Figure, outdir: Path, name: str) -> str:
    """Write ``fig`` to ``outdir/name`` atomically, close it and return ``name``."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(Path(outdir) / name, buffer.getvalue())
    return name


__all__ = ["plt", "save"]
