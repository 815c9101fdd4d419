"""Per-pair measures of function geometry along segments, computed from raw profiles.

Library reconstruction of the gradient gap deviation and gradient deflection of Kubo, Banno,
Manabe, Minoji (2019) (only the abstract was available), with related measures of Volhejn &
Lampert (2020) and Humayun et al. (2024). Notation (see :class:`SegmentProfiles`): grid
``t_k = k / (T - 1)``, values ``g_k``, slopes ``g'_k = J_f(x(t_k)) v``, chord slope
``s = g_{T-1} - g_0``, segment length ``L``; ``mean_k`` runs over all ``T`` grid points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from noisereg.diagnostics.geometry._activations import HOW, Function, watched_modules
from noisereg.diagnostics.geometry.profiles import SegmentProfiles, segment_profiles

Need = Literal["gradients", "activations", "complexity"] | None


@dataclass(frozen=True)
class _Scales:
    """Output scales of one call, per output: ``value`` = std of ``g`` over all pairs and
    points (or the caller's ``output_scale``), ``slope`` = RMS of ``g'_k / L`` over them."""

    value: torch.Tensor
    slope: torch.Tensor


@dataclass(frozen=True)
class Measure:
    """A measure: its definition, what the profiles must hold, and how to compute it."""

    definition: str
    needs: Need
    compute: Callable[[SegmentProfiles, _Scales], torch.Tensor]


def _relative(value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    # 0/0 -> 0: an output that is constant over the call is perfectly straight.
    return torch.where(value == 0, torch.zeros_like(value), value / scale)


def _gap_deviation(p: SegmentProfiles, s: _Scales) -> torch.Tensor:
    chord = p.g[:, -1:] - p.g[:, :1]
    return (p.dg - chord).pow(2).mean(1).sqrt() / p.lengths[:, None]


def _sagitta(p: SegmentProfiles, s: _Scales) -> torch.Tensor:
    t = p.t[None, :, None]
    chord = (1 - t) * p.g[:, :1] + t * p.g[:, -1:]
    return (p.g - chord).abs().amax(1)


MEASURES: dict[str, Measure] = {
    "gradient_gap_deviation": Measure(
        "sqrt(mean_k (g'_k - s)^2) / L, per output: RMS gap between the directional derivative "
        "and the chord slope, per unit input length; 0 iff f is affine on the grid "
        "(reconstruction of Kubo et al.)", None, _gap_deviation),
    "relative_gradient_gap_deviation": Measure(
        "gradient_gap_deviation / RMS over all pairs and points of g'_k / L, per output "
        "(scale-free; never divided by |s|, which vanishes when f(x_a) ~ f(x_b))", None,
        lambda p, s: _relative(_gap_deviation(p, s), s.slope)),
    "gradient_deflection": Measure(
        "sum_k |g'_{k+1} - g'_k| / L, per output: total variation of the slope (ReLU nets have a "
        "zero input Hessian almost everywhere); ~ integral of |u^T H u| ds, u = v / L "
        "(reconstruction of Kubo et al.)", None,
        lambda p, s: p.dg.diff(dim=1).abs().sum(1) / p.lengths[:, None]),
    "gradient_angle_deflection": Measure(
        "sum_k (1 - cos(grad f_o(x_k), grad f_o(x_{k+1}))), per output; cos = 1 when both "
        "gradients vanish, 0 when one does (reconstruction of Kubo et al.)", "gradients",
        lambda p, s: (1 - p.grad_cosines).sum(1)),
    "sagitta": Measure(
        "max_k |g_k - ((1 - t_k) g_0 + t_k g_{T-1})|, per output: largest distance to the chord",
        None, _sagitta),
    "relative_sagitta": Measure(
        "sagitta / output scale, per output; the scale is the std of g over all pairs and points "
        "of the call unless output_scale is given", None,
        lambda p, s: _relative(_sagitta(p, s), s.value)),
    "kinks": Measure(
        "#{k : activation pattern at x_k != pattern at x_{k+1}}: a lower bound on the linear "
        "regions crossed minus one", "activations",
        lambda p, s: (p.flips > 0).sum(1).to(p.g.dtype)),
    "neuron_flips": Measure(
        "sum_k #neurons whose sign differs between x_k and x_{k+1}: a lower bound on the "
        "boundary crossings (exact for one hidden layer when no neuron flips twice per step)",
        "activations", lambda p, s: p.flips.sum(1).to(p.g.dtype)),
    "input_gradient_norm": Measure(
        "mean_k ||J_f(x_k)||_F (Volhejn & Lampert 2020, along the segment)", "gradients",
        lambda p, s: p.grad_norms.pow(2).sum(-1).sqrt().mean(1)),
    "function_path_length": Measure(
        "sum_k ||f(x_{k+1}) - f(x_k)||_2 (Volhejn & Lampert 2020)", None,
        lambda p, s: p.g.diff(dim=1).norm(dim=-1).sum(1)),
    "gradient_path_length": Measure(
        "sum_k ||J_f(x_{k+1}) - J_f(x_k)||_F (Volhejn & Lampert 2020)", "gradients",
        lambda p, s: p.jacobian_steps.sum(1)),
    "local_complexity": Measure(
        "mean_k local_complexity(x_k) (Humayun et al. 2024): neurons cut by the cross-polytope "
        "of radius complexity_radius around each point", "complexity",
        lambda p, s: p.complexity.mean(1)),
}
"""Every measure by name. Per-output measures are ``(P, O)``, the others ``(P,)``."""

DEFAULT_MEASURES: tuple[str, ...] = (
    "gradient_gap_deviation", "relative_gradient_gap_deviation", "gradient_deflection",
    "gradient_angle_deflection", "sagitta", "relative_sagitta", "kinks")
"""The measures of Kubo et al. as reconstructed here (``kinks`` only when a ReLU ran in ``f`` or
``activations`` names modules). ``gradient_angle_deflection`` costs one backward pass per output;
the others come from one forward-mode pass."""

_AVAILABLE = {"gradients": lambda p: p.grad_cosines is not None,
              "activations": lambda p: p.flips is not None,
              "complexity": lambda p: p.complexity is not None}
_HOW = {"gradients": "segment_profiles(..., gradients=True)",
        "activations": HOW,
        "complexity": "segment_profiles(..., complexity_radius=r)"}


@dataclass(frozen=True)
class SegmentMeasures:
    """Measures per pair (``values[name]``: ``(P,)`` or ``(P, O)``) with the raw profiles they
    were computed from and the output scales of the relative measures.

    >>> import torch
    >>> from noisereg.diagnostics import segment_measures
    >>> def f(x):  # ReLU on R^1, one kink at 0
    ...     return torch.relu(x).sum(1)
    >>> xa, xb = torch.tensor([[-1.0]]), torch.tensor([[2.0]])  # x = -1, -0.25, 0.5, 1.25, 2
    >>> m = segment_measures(f, xa, xb, points=5, measures=["sagitta", "kinks"])
    >>> m.values["sagitta"].shape, m.per_pair("sagitta").tolist()
    (torch.Size([1, 1]), [0.5])
    >>> m.summary()
    {'sagitta': {'mean': 0.5, 'std': 0.0}, 'kinks': {'mean': 1.0, 'std': 0.0}}
    """

    profiles: SegmentProfiles
    values: dict[str, torch.Tensor]
    value_scale: torch.Tensor
    slope_scale: torch.Tensor

    def per_pair(self, name: str) -> torch.Tensor:
        """``(P,)``: measure ``name``, averaged over the outputs for per-output measures."""
        value = self.values[name]
        return value.mean(-1) if value.ndim == 2 else value

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and (population) std over pairs of :meth:`per_pair`, for every measure."""
        return {name: {"mean": float(self.per_pair(name).mean()),
                       "std": float(self.per_pair(name).std(correction=0))}
                for name in self.values}


def _check_names(measures: Sequence[str]) -> tuple[str, ...]:
    if isinstance(measures, str) or not all(isinstance(m, str) for m in measures):
        raise TypeError("measures must be a sequence of measure names")
    unknown = [m for m in measures if m not in MEASURES]
    if unknown or not measures:
        raise ValueError(f"measures must be a non-empty selection of {', '.join(MEASURES)}; "
                         f"got {unknown or list(measures)}")
    return tuple(dict.fromkeys(measures))


def _scales(p: SegmentProfiles, output_scale: float | torch.Tensor | None) -> _Scales:
    slope = (p.dg / p.lengths[:, None, None]).pow(2).mean((0, 1)).sqrt()
    if output_scale is None:
        return _Scales(p.g.std(dim=(0, 1), correction=0), slope)
    value = torch.as_tensor(output_scale, dtype=p.g.dtype).expand(p.outputs).clone()
    if not (torch.isfinite(value).all() and (value > 0).all()):
        raise ValueError(f"output_scale must be positive and finite (a float or one per "
                         f"output, {p.outputs}); got {output_scale!r}")
    return _Scales(value, slope)


def profile_measures(profiles: SegmentProfiles, measures: Sequence[str] | None = None, *,
                     output_scale: float | torch.Tensor | None = None) -> SegmentMeasures:
    """Compute ``measures`` (default: every measure the profiles allow) from raw profiles.

    >>> import torch
    >>> from noisereg.diagnostics import profile_measures, segment_profiles
    >>> def f(x):  # ReLU on R^1, one kink at 0
    ...     return torch.relu(x).sum(1)
    >>> xa, xb = torch.tensor([[-1.0]]), torch.tensor([[2.0]])  # x = -1, -0.25, 0.5, 1.25, 2
    >>> p = segment_profiles(f, xa, xb, points=5)
    >>> profile_measures(p, ["sagitta", "kinks"]).summary()  # max |g - chord| at x = 0.5
    {'sagitta': {'mean': 0.5, 'std': 0.0}, 'kinks': {'mean': 1.0, 'std': 0.0}}
    """
    if measures is None:
        measures = [n for n, m in MEASURES.items()
                    if m.needs is None or _AVAILABLE[m.needs](profiles)]
    names = _check_names(measures)
    for name in names:
        need = MEASURES[name].needs
        if need is not None and not _AVAILABLE[need](profiles):
            raise ValueError(f"measure {name!r} needs {_HOW[need]}")
    scales = _scales(profiles, output_scale)
    values = {name: MEASURES[name].compute(profiles, scales) for name in names}
    return SegmentMeasures(profiles, values, scales.value, scales.slope)


def segment_measures(
    f: Function,
    xa: torch.Tensor,
    xb: torch.Tensor,
    *,
    points: int = 129,
    chunk: int = 4096,
    measures: Sequence[str] | None = None,
    activations: Sequence[nn.Module] | None = None,
    output_scale: float | torch.Tensor | None = None,
    complexity_radius: float = 0.05,
    directions: int | torch.Tensor = 8,
    seed: int = 0,
) -> SegmentMeasures:
    """Geometry measures of ``f`` on the segments ``xa[p] -> xb[p]`` (see :data:`MEASURES`).

    ``measures`` defaults to :data:`DEFAULT_MEASURES`; only what they need is evaluated: one
    forward-mode pass for values, slopes and activation patterns, a backward pass per output
    when a measure needs input gradients, ``2 * directions`` forward passes per point for
    ``local_complexity`` (radius ``complexity_radius``). Other arguments as in
    :func:`segment_profiles`; ``output_scale`` replaces the std of the outputs in
    ``relative_sagitta``.

    An affine function is straight on every segment; the ReLU bends once:

    >>> import torch
    >>> from noisereg.diagnostics import segment_measures
    >>> def f(x):  # ReLU on R^1, one kink at 0
    ...     return torch.relu(x).sum(1)
    >>> xa, xb = torch.tensor([[-1.0]]), torch.tensor([[2.0]])  # x = -1, -0.25, 0.5, 1.25, 2
    >>> m = segment_measures(lambda x: 2 * x.sum(1) + 1, xa, xb, points=5)
    >>> m.per_pair("gradient_gap_deviation").tolist(), m.per_pair("sagitta").tolist()
    ([0.0], [0.0])
    >>> m = segment_measures(f, xa, xb, points=5)
    >>> m.per_pair("kinks").tolist(), m.per_pair("sagitta").tolist()
    ([1.0], [0.5])
    """
    watched = watched_modules(activations)
    names = _check_names(DEFAULT_MEASURES if measures is None else measures)
    needs = {MEASURES[name].needs for name in names}
    if "activations" in needs and watched == [] and measures is not None:
        raise ValueError(f"kinks and neuron_flips need {_HOW['activations']}")
    profiles = segment_profiles(
        f, xa, xb, points=points, chunk=chunk, gradients="gradients" in needs,
        activations=watched, seed=seed, directions=directions,
        complexity_radius=complexity_radius if "complexity" in needs else None)
    if measures is None and profiles.flips is None:  # no ReLU ran: no kinks to count
        names = tuple(n for n in names if n != "kinks")
    return profile_measures(profiles, names, output_scale=output_scale)
