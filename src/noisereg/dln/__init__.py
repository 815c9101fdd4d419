"""Fast simulator of label-noise SGD and gradient descent on diagonal linear networks.

>>> from noisereg import dln
>>> X, y, beta_star = dln.sparse_regression(n=10, d=20, k=2, seed=0)
>>> res = dln.gradient_descent(X, y, step_size=0.05, steps=2000, init_scale=0.1)
>>> res.beta_last.shape, bool(res.trace.loss[-1] < res.trace.loss[0])
((20,), True)
"""

from noisereg.dln.problems import relative_error, sparse_regression
from noisereg.dln.simulator import DLNResult, Trace, gradient_descent, label_noise_sgd

__all__ = ["DLNResult", "Trace", "gradient_descent", "label_noise_sgd", "relative_error",
           "sparse_regression"]
