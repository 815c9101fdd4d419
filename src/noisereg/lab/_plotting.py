"""Matplotlib with the file-only Agg backend, and atomic PNG saving."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from noisereg._atomic import atomic_write_bytes


def save(fig: plt.Figure, outdir: Path, name: str) -> str:
    """Write ``fig`` to ``outdir/name`` atomically, close it and return ``name``."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(Path(outdir) / name, buffer.getvalue())
    return name


__all__ = ["plot_coefficients", "plt", "save"]


def plot_coefficients(ax: plt.Axes, beta_star: Sequence[float],
                      series: Sequence[tuple[Sequence[float], str, dict]], *,
                      star_label: str = "β* (support)") -> None:
    """beta_j against j for each ``(values, fmt, style)`` of ``series``, with supp(beta*) marked."""
    index = np.arange(len(beta_star))
    for values, fmt, style in series:
        ax.plot(index, values, fmt, **style)
    star = np.flatnonzero(beta_star)
    ax.plot(star, np.asarray(beta_star)[star], "+", color="k", ms=10, label=star_label)
    ax.set(xlabel="coordinate j", ylabel="β_j")
