"""Closed forms and exact solvers: the oracles the methods are checked against.

>>> from noisereg import theory
>>> theory.label_noise_lasso_penalty(step_size=0.5, delta=1.0, batch_size=2)  # gamma delta^2 / B
0.25
"""

from noisereg._lazy import lazy_exports

_EXPORTS = {
    # label noise (Pillaud-Vivien, Reygner, Flammarion)
    "label_noise_lasso_penalty": "noisereg.theory.sparse",
    "lasso": "noisereg.theory.sparse",
    "hypentropy_interpolator": "noisereg.theory.hypentropy",
    "irrepresentable_constant": "noisereg.theory.sparse",
    "column_weights": "noisereg.theory.sparse",
    # noise injection (Orvieto et al.)
    "effective_regularizer": "noisereg.theory.noise_injection",
    "lasso_weights": "noisereg.theory.noise_injection",
    "diagonal_net_smoothed_loss": "noisereg.theory.noise_injection",
    "linear_net_smoothed_loss": "noisereg.theory.noise_injection",
    "group_net_smoothed_loss": "noisereg.theory.noise_injection",
    "group_lasso_penalty": "noisereg.theory.noise_injection",
    "nuclear_norm_objective": "noisereg.theory.noise_injection",
    "nuclear_norm_solution": "noisereg.theory.noise_injection",
    "singular_value_threshold": "noisereg.theory.noise_injection",
    "two_layer_linear_net": "noisereg.theory.noise_injection",
    "group_lasso": "noisereg.theory.group_sparse",
    "fitted_group_lasso": "noisereg.theory.group_sparse",
    "noise_injection_group_weights": "noisereg.theory.group_sparse",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
