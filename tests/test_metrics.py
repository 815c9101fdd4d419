"""The per-example cross-entropy is F.cross_entropy of each row alone; the accuracy is the exact
fraction of hits, counted by hand."""

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from noisereg._seeding import torch_generator
from noisereg.metrics import accuracy, per_example_cross_entropy


def test_per_example_cross_entropy_is_each_rows_own_cross_entropy() -> None:
    gen = torch_generator(0, "data")
    scores = torch.randn(7, 5, generator=gen, dtype=torch.float64) * 4
    targets = torch.randint(0, 5, (7,), generator=gen)
    losses = per_example_cross_entropy(scores, targets)
    assert losses.shape == (7,)
    for i in range(7):
        alone = F.cross_entropy(scores[i:i + 1], targets[i:i + 1])  # the mean of one row
        torch.testing.assert_close(losses[i], alone, rtol=0, atol=1e-15)
    torch.testing.assert_close(losses.mean(), F.cross_entropy(scores, targets))


def test_per_example_cross_entropy_keeps_the_graph() -> None:
    scores = torch.zeros(2, 3, requires_grad=True)
    per_example_cross_entropy(scores, torch.tensor([0, 2])).sum().backward()
    # d/ds_c of -log softmax(s)_t at s = 0: 1/3 - [c = t]
    expected = torch.full((2, 3), 1 / 3)
    expected[0, 0] -= 1
    expected[1, 2] -= 1
    torch.testing.assert_close(scores.grad, expected)


def test_accuracy_is_the_exact_fraction_of_hits() -> None:
    # 3998 of 4000 right: the float nearest 1999/2000, not float32's mean 0.99949997...
    n = 4000
    targets = torch.zeros(n, dtype=torch.long)
    scores = torch.tensor([[1.0, 0.0]]).repeat(n, 1)
    scores[[17, 3001]] = torch.tensor([0.0, 1.0])
    assert accuracy(scores, targets) == float(Fraction(3998, 4000)) == 0.9995
    assert float((scores.argmax(1) == targets).float().mean()) != 0.9995  # the old rounding


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_accuracy_counts_by_hand_whatever_the_dtype(dtype: torch.dtype) -> None:
    gen = torch_generator(1, "data")
    scores = torch.randn(999, 10, generator=gen).to(dtype)
    targets = torch.randint(0, 10, (999,), generator=gen)
    rows = scores.float().tolist()
    hits = sum(max(range(10), key=lambda c, r=r: (r[c], -c)) == t
               for r, t in zip(rows, targets.tolist()))
    assert accuracy(scores, targets) == float(Fraction(hits, 999))


def test_a_tie_goes_to_the_first_class() -> None:
    scores = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert accuracy(scores, torch.tensor([0, 1])) == 0.5


@pytest.mark.parametrize(("outputs", "targets", "message"), [
    (torch.zeros(3), torch.zeros(3, dtype=torch.long), r"outputs must be .*\[B, C\], got \(3,\)"),
    (torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), r"targets must be .*B = 3.*got \(2,\)"),
    ([[0.0, 1.0]], torch.zeros(1, dtype=torch.long), "outputs must be a tensor"),
])
def test_bad_shapes_are_refused_naming_the_argument(outputs, targets, message: str) -> None:
    for function in (accuracy, per_example_cross_entropy):
        with pytest.raises(ValueError, match=message):
            function(outputs, targets)


def test_the_accuracy_of_no_examples_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one example"):
        accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
