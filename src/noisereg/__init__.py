"""noisereg: regularization by noise and by gradient penalties in over-parametrized models.

The methods plug into any PyTorch training loop:

* :class:`PerturbedOptimizer`, :class:`AntiPGD`: noise injection (Orvieto et al. 2023, 2022);
* :func:`pegr_penalty`, :func:`gr_penalty`, :func:`per_example_sq_grad_norms`: per-example
  gradient regularization (Meng, Cao, Zou 2023);
* :class:`LabelNoise`: label noise (Pillaud-Vivien, Reygner, Flammarion 2022).

Subpackages: ``models``, ``data``, ``optim``, ``gradreg``, ``diagnostics``, ``theory``, ``dln``
(fast label-noise simulator); modules ``trainer`` (one training loop for every method, single
process or DDP; ``python -m noisereg.train`` is its command line) and ``metrics`` (per-example
cross-entropy, exact accuracy). The library needs only torch and numpy; a part that needs more
(the bundled data sets, the compiled simulator, the Lasso oracle) names the extra to install.
The reproduction lab (experiments, runner, report, benchmarks, the ``noisereg`` command) is
:mod:`noisereg.lab`, installed with ``pip install 'noisereg[lab]'``.

>>> import noisereg
>>> noisereg.PerturbedOptimizer is noisereg.optim.PerturbedOptimizer
True
>>> noisereg.theory.group_lasso.__module__  # the function, not a module of the same name
'noisereg.theory.group_sparse'
"""

from noisereg._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "PerturbedOptimizer": "noisereg.optim",
    "AntiPGD": "noisereg.optim",
    "LabelNoise": "noisereg.label_noise",
    "per_example_sq_grad_norms": "noisereg.gradreg",
    "pegr_penalty": "noisereg.gradreg",
    "gr_penalty": "noisereg.gradreg",
    "regularized_loss": "noisereg.gradreg",
    "PEGR": "noisereg.gradreg",
    "GR": "noisereg.gradreg",
    **{sub: f"noisereg.{sub}" for sub in ("models", "data", "optim", "gradreg", "diagnostics",
                                          "theory", "dln", "trainer", "metrics")},
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
