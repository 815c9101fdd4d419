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


__all__ = ["log_steps", "plot_coefficients", "plt", "save", "seed_points"]


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


def log_steps(steps: Sequence[float], *axes: plt.Axes) -> np.ndarray:
    """``steps`` for a log x-axis, step 0 drawn at 0.5, and each of ``axes`` set to show them."""
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("GD step (step 0 drawn at 0.5)")
    return np.maximum(np.asarray(steps, dtype=float), 0.5)


def seed_points(ax: plt.Axes, x: float, values: Sequence[float], *, color: str,
                spread: float = 0.1, mean_width: float = 0.25, label: str | None = None) -> None:
    """One value per seed as open dots spread over ``x ± spread``, their mean (NaN seeds left
    out) as a bar of half-width ``mean_width``."""
    values = np.asarray(values, dtype=float)
    ax.plot(x + np.linspace(-spread, spread, len(values)), values, "o", color=color, mfc="none")
    ax.plot([x - mean_width, x + mean_width], [np.nanmean(values)] * 2, color=color, lw=2,
            label=label)
