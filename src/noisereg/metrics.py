"""The per-example loss and the accuracy of a classifier, shared by the trainer and the lab.

``per_example_cross_entropy(outputs, targets)`` is the loss :mod:`noisereg.gradreg` expects (one
value per example, so PEGR can penalize each example's gradient); ``accuracy`` is the exact
fraction of examples whose largest class score is their target, counted in integers, so that
e.g. 3998 of 4000 is the float nearest 0.9995, not the float32 mean 0.99949997...

>>> import torch
>>> from noisereg.metrics import accuracy, per_example_cross_entropy
>>> scores = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
>>> targets = torch.tensor([0, 1, 0])
>>> per_example_cross_entropy(scores, targets).shape
torch.Size([3])
>>> accuracy(scores, targets)  # a tie goes to the first class: 1 of 3 right
0.3333333333333333
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["accuracy", "per_example_cross_entropy"]


def _check_scores(outputs: torch.Tensor, targets: torch.Tensor) -> None:
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 2:
        shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs)
        raise ValueError(f"outputs must be a tensor of class scores [B, C], got {shape}")
    if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != tuple(outputs.shape[:1]):
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets)
        raise ValueError(f"targets must be a tensor of class indices [B] with B = "
                         f"{outputs.shape[0]} (the rows of outputs), got {shape}")


def per_example_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``-log softmax(outputs[i])[targets[i]]`` for every row: class scores ``[B, C]`` and class
    indices ``[B]`` give ``[B]`` losses (their mean is ``F.cross_entropy``'s default).

    >>> per_example_cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))  # log 4 each
    tensor([1.3863, 1.3863])
    """
    _check_scores(outputs, targets)
    return F.cross_entropy(outputs, targets, reduction="none")


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The fraction of rows whose largest score (the first one on a tie) is at their target:
    the count of hits over ``B``, both Python integers, so the result is the float nearest the
    exact fraction whatever the dtype of ``outputs``. Raises ``ValueError`` for ``B = 0``.

    >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
    0.5
    """
    _check_scores(outputs, targets)
    if len(targets) == 0:
        raise ValueError("outputs must hold at least one example (B >= 1), got 0 rows: "
                         "the accuracy of nothing is undefined")
    hits = int((outputs.argmax(dim=1) == targets).sum())
    return hits / len(targets)
