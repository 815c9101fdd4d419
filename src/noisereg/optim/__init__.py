"""Noise-injection optimizers wrapping any torch optimizer (Orvieto et al. 2022, 2023).

* :class:`PerturbedOptimizer`: perturbed gradient descent, global or layer-wise noise;
* :class:`AntiPGD`: anti-correlated perturbations;
* :func:`sigma_from_official`: converts the official code's sigma to this library's convention.

>>> import torch
>>> from noisereg import optim
>>> model = torch.nn.Linear(2, 1)
>>> opt = optim.PerturbedOptimizer(model.parameters(), torch.optim.SGD, sigma=0.01, lr=0.1)
>>> type(opt.base).__name__  # the wrapped optimizer takes the step
'SGD'
"""

from noisereg.optim.anti_pgd import AntiPGD
from noisereg.optim.perturbed import PerturbedOptimizer, sigma_from_official

__all__ = ["AntiPGD", "PerturbedOptimizer", "sigma_from_official"]
