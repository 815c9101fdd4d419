"""Diagnostics: Hessian trace and top eigenvalue, Monte-Carlo smoothed loss, signal-noise
coefficients, function geometry.

>>> import torch
>>> from noisereg import diagnostics
>>> model = torch.nn.Linear(4, 1, bias=False)
>>> def loss(out, t):  # H = X^T X / n = I: trace 4
...     return 0.5 * ((out.squeeze(1) - t) ** 2).mean()
>>> diagnostics.hessian_trace(model, loss, 2 * torch.eye(4), torch.zeros(4), probes=2).trace
4.0
"""

from noisereg._lazy import lazy_exports

_EXPORTS = {
    # noise injection (Orvieto et al.): curvature
    "hessian_trace": "noisereg.diagnostics.hessian",
    "top_eigenvalue": "noisereg.diagnostics.hessian",
    "TraceEstimate": "noisereg.diagnostics.hessian",
    "EigenEstimate": "noisereg.diagnostics.hessian",
    "smoothed_loss": "noisereg.diagnostics.smoothing",
    "MonteCarloEstimate": "noisereg.diagnostics.smoothing",
    # PEGR (Meng, Cao, Zou): signal learning vs noise memorization
    "signal_noise_coefficients": "noisereg.diagnostics.signal_noise",
    # function geometry (Kubo et al.)
    "segment_profiles": "noisereg.diagnostics.geometry",
    "segment_measures": "noisereg.diagnostics.geometry",
    "profile_measures": "noisereg.diagnostics.geometry",
    "local_complexity": "noisereg.diagnostics.geometry",
    "SegmentProfiles": "noisereg.diagnostics.geometry",
    "SegmentMeasures": "noisereg.diagnostics.geometry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
