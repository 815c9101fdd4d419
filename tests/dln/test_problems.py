"""Sparse regression instances: unit columns, k-sparse truth, the irrepresentable bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noisereg.dln import relative_error, sparse_regression


def test_instance_has_unit_columns_and_a_k_sparse_truth() -> None:
    X, y, beta = sparse_regression(20, 50, 4, seed=3, magnitudes=(2.0, 1.0, 0.5, 0.25))
    np.testing.assert_allclose((X**2).sum(axis=0) / 20, 1.0)
    np.testing.assert_allclose(y, X @ beta)
    assert np.count_nonzero(beta) == 4
    assert sorted(np.abs(beta[beta != 0]).tolist()) == [0.25, 0.5, 1.0, 2.0]
    X2, _, beta2 = sparse_regression(20, 50, 4, seed=3, magnitudes=(2.0, 1.0, 0.5, 0.25))
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(beta, beta2)
    _, _, positive = sparse_regression(20, 50, 4, seed=3, signed=False)
    assert positive.min() == 0 and set(positive[positive != 0]) == {1.0}


def test_designs_are_redrawn_below_the_irrepresentable_bound() -> None:
    X, _, beta = sparse_regression(40, 80, 3, seed=0, max_irrepresentable=0.5)
    S = np.flatnonzero(beta)
    rest = np.setdiff1d(np.arange(80), S)
    XS = X[:, S]
    value = np.abs(X[:, rest].T @ XS @ np.linalg.inv(XS.T @ XS) @ np.sign(beta[S])).max()
    assert value < 0.5
    with pytest.raises(ValueError, match="no design with irrepresentable constant"):
        sparse_regression(10, 200, 5, seed=0, max_irrepresentable=0.05, max_attempts=3)


def test_relative_error_and_bad_input() -> None:
    assert relative_error(np.array([3.0, 4.0]), np.array([0.0, 4.0])) == pytest.approx(0.75)
    # Matrices by the Frobenius norm: ||[[3, 0], [0, -4]]|| / ||[[0, 0], [0, 4]]|| = 5 / 4, from a
    # float32 tensor and a nested list alike.
    estimate = torch.tensor([[3.0, 0.0], [0.0, 0.0]], dtype=torch.float32)
    assert relative_error(estimate, [[0.0, 0.0], [0.0, 4.0]]) == 1.25
    assert relative_error([1.0, 1.0], [1.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="k must be in"):
        sparse_regression(5, 10, 6, seed=0)
    with pytest.raises(ValueError, match="magnitudes must be"):
        sparse_regression(5, 10, 2, seed=0, magnitudes=(1.0, -1.0))
