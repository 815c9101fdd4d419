"""Function geometry along segments between inputs (after Kubo, Banno, Manabe, Minoji 2019).

Kubo et al. introduce the *gradient gap deviation* and the *gradient deflection* to show that
randomly initialised and SGD-trained ReLU networks interpolate almost straight between pairs of
inputs. Only their abstract was available: every definition here is the library's own
reconstruction, marked as such in each docstring. All measures are
computed from stored raw profiles (:class:`SegmentProfiles`), so other definitions can be
recomputed later without evaluating the network again.

For a pair ``(x_a, x_b)``: ``x(t) = (1 - t) x_a + t x_b`` on the grid ``t_k = k / (T - 1)``,
``v = x_b - x_a``, ``L = ||v||`` and ``g(t) = f(x(t))`` for each output of ``f`` separately.

* :func:`segment_profiles`: ``g(t_k)``, ``g'(t_k) = J_f(x(t_k)) v`` (forward-mode JVP),
  activation-pattern flips, and optionally input-gradient summaries and local complexity;
* :func:`segment_measures` / :func:`profile_measures`: per pair measures (see
  :data:`MEASURES`) with mean and std over pairs;
* :func:`local_complexity`: density of ReLU boundaries near points (Humayun et al. 2024).

>>> from noisereg.diagnostics.geometry import DEFAULT_MEASURES, MEASURES
>>> DEFAULT_MEASURES[:3]
('gradient_gap_deviation', 'relative_gradient_gap_deviation', 'gradient_deflection')
>>> set(DEFAULT_MEASURES) <= set(MEASURES), len(MEASURES)
(True, 12)
"""

from noisereg.diagnostics.geometry.complexity import local_complexity
from noisereg.diagnostics.geometry.measures import (
    DEFAULT_MEASURES,
    MEASURES,
    SegmentMeasures,
    profile_measures,
    segment_measures,
)
from noisereg.diagnostics.geometry.profiles import SegmentProfiles, segment_profiles

__all__ = [
    "DEFAULT_MEASURES",
    "MEASURES",
    "SegmentMeasures",
    "SegmentProfiles",
    "local_complexity",
    "profile_measures",
    "segment_measures",
    "segment_profiles",
]
