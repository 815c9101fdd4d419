"""Fast simulator of label-noise SGD and gradient descent on diagonal linear networks."""

from noisereg.dln.problems import relative_error, sparse_regression
from noisereg.dln.simulator import DLNResult, Trace, gradient_descent, label_noise_sgd

__all__ = ["DLNResult", "Trace", "gradient_descent", "label_noise_sgd", "relative_error",
           "sparse_regression"]
