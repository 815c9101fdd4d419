"""Noise-injection optimizers wrapping any torch optimizer (Orvieto et al. 2022, 2023).

* :class:`PerturbedOptimizer`: perturbed gradient descent, global or layer-wise noise;
* :class:`AntiPGD`: anti-correlated perturbations;
* :func:`sigma_from_official`: converts the official code's sigma to this library's convention.
"""

from noisereg.optim.anti_pgd import AntiPGD
from noisereg.optim.perturbed import PerturbedOptimizer, sigma_from_official

__all__ = ["AntiPGD", "PerturbedOptimizer", "sigma_from_official"]
