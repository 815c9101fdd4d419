"""LabelNoise: the noise statistics, flips to other classes only, determinism and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from noisereg import LabelNoise

N = 200_000


def test_rademacher_noise_is_plus_minus_delta_with_mean_zero() -> None:
    y = torch.linspace(-1, 1, N, dtype=torch.float64)
    eps = (LabelNoise("rademacher", 0.3)(y) - y) / 0.3
    torch.testing.assert_close(eps.abs(), torch.ones_like(eps))
    assert abs(eps.mean().item()) < 4 / N**0.5  # sd of the mean is 1 / sqrt(N)


def test_gaussian_noise_is_normal_with_std_delta() -> None:
    y = torch.zeros(N, dtype=torch.float64)
    noisy = LabelNoise("gaussian", 2.0, seed=3)(y)
    assert abs(noisy.mean().item()) < 4 * 2.0 / N**0.5
    assert abs(noisy.var().item() / 4.0 - 1) < 4 * (2 / N) ** 0.5
    assert stats.kstest(noisy.numpy() / 2.0, "norm").pvalue > 1e-3


@pytest.mark.parametrize("p", [0.0, 0.2, 1.0])
def test_flip_rate_is_p_and_the_new_class_is_uniform_over_the_others(p) -> None:
    C = 5
    y = torch.randint(0, C, (N,), generator=torch.Generator().manual_seed(0))
    noisy = LabelNoise("flip", p, seed=1, num_classes=C)(y)
    assert noisy.dtype == y.dtype and noisy.min() >= 0 and noisy.max() < C
    changed = noisy != y
    # A flip never keeps the class: the change rate is p itself, not p (C - 1) / C.
    assert abs(changed.double().mean().item() - p) < 4 * (p * (1 - p) / N) ** 0.5 + 1e-12
    if p > 0:
        offsets = ((noisy - y) % C)[changed].numpy()
        counts = np.bincount(offsets, minlength=C)[1:]
        assert stats.chisquare(counts).pvalue > 1e-3


def test_same_seed_same_noise_and_fresh_noise_per_call() -> None:
    y = torch.zeros(100)
    a, b = LabelNoise("gaussian", 1.0, seed=5), LabelNoise("gaussian", 1.0, seed=5)
    first = a(y)
    torch.testing.assert_close(first, b(y), rtol=0, atol=0)
    assert not torch.equal(first, a(y))
    assert not torch.equal(first, LabelNoise("gaussian", 1.0, seed=6)(y))
    shared = LabelNoise("gaussian", 1.0, seed=5, noise_sync="shared")(y)
    per_rank = LabelNoise("gaussian", 1.0, seed=5, noise_sync="per_rank")(y)
    assert not torch.equal(shared, per_rank)


def test_state_dict_round_trip_resumes_the_noise() -> None:
    y = torch.zeros(50)
    noise = LabelNoise("rademacher", 1.0, seed=2)
    noise(y)
    state = noise.state_dict()
    expected = [noise(y) for _ in range(3)]
    resumed = LabelNoise("rademacher", 1.0, seed=0)
    resumed.load_state_dict(state)
    for want in expected:
        torch.testing.assert_close(resumed(y), want, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"state is missing \['calls'\]"):
        resumed.load_state_dict({"seed": 0, "noise_sync": "shared"})


@pytest.mark.parametrize("ignore_index", [-100, -1, 7])
def test_ignored_labels_are_left_untouched_and_the_others_get_the_same_noise(ignore_index):
    """HF's -100 labels (any ignore_index) are returned as they are; every other label is
    flipped exactly as when the ignored ones are replaced by valid classes."""
    C = 4
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, C, (N,), generator=gen)
    ignored = torch.rand(N, generator=gen) < 0.3
    masked = torch.where(ignored, ignore_index, y)
    noisy = LabelNoise("flip", 0.4, seed=2, num_classes=C, ignore_index=ignore_index)(masked)
    reference = LabelNoise("flip", 0.4, seed=2, num_classes=C)(y)
    assert torch.equal(noisy[ignored], masked[ignored])
    assert torch.equal(noisy[~ignored], reference[~ignored])
    changed = (noisy != y)[~ignored].double()
    assert abs(changed.mean().item() - 0.4) < 4 * (0.4 * 0.6 / changed.numel()) ** 0.5


@pytest.mark.parametrize(
    ("build", "targets", "error", "message"),
    [
        (lambda: LabelNoise("uniform", 1.0), None, ValueError, "kind must be one of"),
        (lambda: LabelNoise("gaussian", -1.0), None, ValueError, "scale must be >= 0"),
        (lambda: LabelNoise("flip", 1.5, num_classes=3), None, ValueError, r"scale must be in"),
        (lambda: LabelNoise("flip", 0.1), None, ValueError, "num_classes is required"),
        (lambda: LabelNoise("gaussian", 1.0, noise_sync="all"), None, ValueError, "noise_sync"),
        (lambda: LabelNoise("gaussian", 1.0), torch.zeros(3, dtype=torch.long), ValueError,
         "needs float targets"),
        (lambda: LabelNoise("flip", 0.1, num_classes=3), torch.zeros(3), ValueError,
         "integer class labels"),
        (lambda: LabelNoise("flip", 0.1, num_classes=3), torch.tensor([0, 3]), ValueError,
         r"class labels in \[0, 3\) for num_classes=3 \(or ignore_index=-100\)"),
        (lambda: LabelNoise("flip", 0.1, num_classes=3), torch.tensor([0, -1]), ValueError,
         r"class labels in \[0, 3\)"),
        (lambda: LabelNoise("flip", 0.1, num_classes=3, ignore_index=None),
         torch.tensor([0, -100]), ValueError, r"class labels in \[0, 3\) for num_classes=3$"),
        (lambda: LabelNoise("flip", 0.1, num_classes=3, ignore_index=1.5), None, ValueError,
         "ignore_index must be an integer"),
        (lambda: LabelNoise("gaussian", 1.0), [1.0, 2.0], TypeError, "torch.Tensor"),
    ],
)
def test_bad_input(build, targets, error, message) -> None:
    with pytest.raises(error, match=message):
        build()(targets)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "flip"])
def test_shards_together_apply_the_global_batch_noise(kind: str) -> None:
    targets = torch.arange(12) % 5 if kind == "flip" else torch.linspace(-1, 1, 12)
    whole = LabelNoise(kind, 0.5, seed=3, num_classes=5)(targets)
    world = 3
    parts = [LabelNoise(kind, 0.5, seed=3, num_classes=5)(targets[r::world], shard=(r, world))
             for r in range(world)]
    rebuilt = torch.empty_like(whole)
    for r, part in enumerate(parts):
        rebuilt[r::world] = part
    assert torch.equal(rebuilt, whole)
    with pytest.raises(ValueError, match="shard rank"):
        LabelNoise(kind, 0.5, num_classes=5)(targets, shard=(3, 3))
