"""Per-example gradient regularization (Meng, Cao, Zou 2023): differentiable per-example
gradient norms (ghost, vmap and loop backends), the PEGR and GR penalties and the regularized
training objective. See :mod:`noisereg.gradreg.penalties` for use under DDP.

>>> from noisereg import gradreg
>>> gradreg.BACKENDS, gradreg.PENALTIES
(('auto', 'ghost', 'vmap', 'loop'), ('pegr', 'gr'))
"""

from noisereg.gradreg._plan import (
    BackendChoice,
    FallbackWarning,
    backend_choice,
    uncovered_modules,
)
from noisereg.gradreg.ghost import register_ghost_rule
from noisereg.gradreg.norms import BACKENDS, per_example_sq_grad_norms
from noisereg.gradreg.penalties import (
    GR,
    PEGR,
    PENALTIES,
    PenalizedLoss,
    gr_penalty,
    loss_and_penalty,
    pegr_penalty,
    regularized_loss,
)

__all__ = [
    "BACKENDS",
    "GR",
    "PEGR",
    "PENALTIES",
    "BackendChoice",
    "FallbackWarning",
    "PenalizedLoss",
    "backend_choice",
    "gr_penalty",
    "loss_and_penalty",
    "pegr_penalty",
    "per_example_sq_grad_norms",
    "register_ghost_rule",
    "regularized_loss",
    "uncovered_modules",
]
