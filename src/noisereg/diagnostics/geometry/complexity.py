"""Local complexity: the density of ReLU boundaries near a point (Humayun, Balestriero, Baraniuk
2024, "Deep networks always grok and here is why")."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from noisereg._seeding import torch_generator
from noisereg._validate import check_int, check_positive
from noisereg.diagnostics.geometry._activations import (
    HOW,
    Function,
    PatternRecorder,
    watched_modules,
)


def _frame(directions: int | torch.Tensor, size: int, seed: int,
           like: torch.Tensor) -> torch.Tensor:
    """``(m, size)`` directions: ``m`` orthonormal ones drawn with ``seed``, or the given rows."""
    if isinstance(directions, torch.Tensor):
        if directions.ndim != 2 or directions.shape[1] != size or len(directions) < 1:
            raise ValueError(f"directions must be an int or a tensor of shape (m, {size}); got "
                             f"shape {tuple(directions.shape)}")
        return directions.to(like)
    check_int("directions", directions, low=1, high=size)
    gaussian = torch.randn(size, directions, generator=torch_generator(seed, "probes"),
                           dtype=torch.float64)
    return torch.linalg.qr(gaussian).Q.T.to(like)


@torch.no_grad()
def local_complexity(f: Function, x: torch.Tensor, *, radius: float,
                     directions: int | torch.Tensor = 8, seed: int = 0,
                     activations: Sequence[nn.Module] | None = None,
                     chunk: int = 4096) -> torch.Tensor:
    """Number of neurons whose hyperplane cuts a small cross-polytope around each point.

    Humayun et al. (2024) place the cross-polytope frame ``V_x = {x +- r q_j, j = 1..m}``
    around ``x`` (``q_j`` orthonormal, ``r`` = ``radius``) and count, layer by layer, the
    neurons whose pre-activation sign is not the same at all ``2m`` vertices; the local
    complexity is the sum over layers: a proxy for the density of linear regions near ``x``.
    For first-layer neurons the count is exact: ``|w.x + b| < r max_j |w.q_j|``.

    ``directions``: ``m`` (the ``q_j`` are the Q factor of a Gaussian matrix drawn with
    ``seed``) or an explicit ``(m, input_size)`` tensor of directions. ``activations`` as in
    :func:`segment_profiles`. Returns ``(n,)`` counts (float). Costs ``2m`` forward passes per
    point, ``chunk`` vertices per pass.

    Three first-layer neurons with hyperplanes at x = 0, 0.5 and 2 on the line: within radius
    1 of x = 0 two of them, of x = 2.5 one:

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.diagnostics import local_complexity
    >>> layer = nn.Linear(1, 3)
    >>> with torch.no_grad():
    ...     _ = layer.weight.fill_(1.0), layer.bias.copy_(torch.tensor([0.0, -0.5, -2.0]))
    >>> local_complexity(nn.Sequential(layer, nn.ReLU()), torch.tensor([[0.0], [2.5]]),
    ...                  radius=1.0, directions=1).tolist()
    [2.0, 1.0]
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise ValueError("x must be a floating tensor of shape (n, *input_shape)")
    check_positive("radius", radius)
    check_int("chunk", chunk, low=1)
    watched = watched_modules(activations)
    q = _frame(directions, math.prod(x.shape[1:]), seed, x)
    offsets = radius * torch.cat([q, -q]).reshape(-1, *x.shape[1:])  # (2m, *input_shape)
    vertices = len(offsets)
    per_chunk = max(1, chunk // vertices)
    recorder = PatternRecorder(watched, lambda signs: _cut(signs, vertices))
    counts = []
    for start in range(0, len(x), per_chunk):
        centres = x[start:start + per_chunk]
        with recorder.recording(len(centres) * vertices):
            f((centres[:, None] + offsets).flatten(0, 1))
        total = recorder.total()
        if total is None:
            raise ValueError(f"local_complexity needs {HOW}")
        counts.append(total.to(x.dtype))
    return torch.cat(counts)


def _cut(signs: torch.Tensor, vertices: int) -> torch.Tensor:
    """Per centre: neurons of one layer whose sign is not the same at all its vertices."""
    signs = signs.reshape(-1, vertices, signs.shape[1])
    return (signs.any(1) & ~signs.all(1)).sum(-1)
