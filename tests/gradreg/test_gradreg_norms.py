"""Per-example squared gradient norms: every backend against a plain per-example autograd loop
written here, on models holding each layer type the ghost backend covers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from noisereg.gradreg import (
    FallbackWarning,
    backend_choice,
    per_example_sq_grad_norms,
    uncovered_modules,
)

BACKENDS = ("ghost", "vmap", "loop", "auto")


def seeded(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    """Build on the meta device, then draw every parameter and buffer from a seeded generator."""
    with torch.device("meta"):
        model = build()
    model.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.copy_(0.5 * torch.randn(t.shape, generator=gen) + (t.dim() == 1) * 0.3)
            else:
                t.zero_()
        for m in model.modules():  # positive running variances for eval-mode BatchNorm
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    return model.double()


def ce(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, target, reduction="none")


class Pool(nn.Module):
    """Mean over the positions: dim 1 of a sequence [B, T, F], dims >= 2 of a map [B, C, ...]."""

    def __init__(self, channels_first: bool = True) -> None:
        super().__init__()
        self.channels_first = channels_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1) if self.channels_first else x.mean(1)


class Twice(nn.Module):
    """Applies one Linear layer twice (weight reuse inside one forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(5, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.inner(torch.tanh(self.inner(x)))))


class Scaled(nn.Module):
    """A module owning a raw parameter: no ghost rule."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(x * self.scale))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def sequence() -> nn.Module:  # Embedding, Linear on 3-D inputs, LayerNorm
    return nn.Sequential(nn.Embedding(7, 6, padding_idx=0), nn.Linear(6, 5), nn.Tanh(),
                         nn.LayerNorm(5), nn.Linear(5, 4), Pool(False), nn.Linear(4, 3))


def conv1d() -> nn.Module:  # the last conv takes the Gram path (T (p + d) <= p d), others not
    return nn.Sequential(
        nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, padding_mode="circular"),
        nn.Tanh(), nn.Conv1d(6, 6, 2, padding="same", padding_mode="reflect"), nn.Tanh(),
        nn.Conv1d(6, 4, 3, groups=2, bias=False), nn.Tanh(), nn.Conv1d(4, 16, 2, dilation=2,
                                                                       groups=2),
        nn.GroupNorm(2, 16), Pool(), nn.Linear(16, 3))


def conv2d() -> nn.Module:  # large maps (per-example weight gradient), the last conv: Gram
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=(1, 2), padding=1, dilation=(2, 1)), nn.Tanh(),
        nn.Conv2d(4, 6, 2, stride=2, groups=2), nn.BatchNorm2d(6).eval(), nn.Tanh(),
        nn.Conv2d(6, 8, 1), nn.GroupNorm(4, 8), nn.Tanh(), nn.Conv2d(8, 32, 2, padding=(0, 1)),
        Pool(), nn.Linear(32, 3))


def data(kind: str, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = {"mlp": (6,), "conv1d": (4, 11), "conv2d": (2, 9, 8), "twice": (5,), "scaled": (4,)}
    target = torch.randint(0, 3, (batch,), generator=gen)
    if kind == "sequence":  # index 0 is the padding row; repeats exercise shared rows
        return torch.randint(0, 7, (batch, 9), generator=gen), target
    return torch.randn((batch, *shapes[kind]), generator=gen, dtype=torch.float64), target


MODELS = {"mlp": mlp, "sequence": sequence, "conv1d": conv1d, "conv2d": conv2d, "twice": Twice}


def reference(model: nn.Module, x, t, forward: Callable | None = None,
              loss=ce) -> torch.Tensor:
    """||grad l_i||^2 from autograd on one example at a time (math attention kernel, with
    graph); ``x`` and ``t`` are tensors or dicts, sliced here by hand."""
    forward = forward or (lambda m, b: m(**b) if isinstance(b, dict) else m(b))
    params = [p for p in model.parameters() if p.requires_grad]
    norms = []
    for i in range(len(t)):
        xi = ({k: v[i:i + 1] if torch.is_tensor(v) else v for k, v in x.items()}
              if isinstance(x, dict) else x[i:i + 1])
        with sdpa_kernel(SDPBackend.MATH):
            li = loss(forward(model, xi), t[i:i + 1]).sum()
            grads = torch.autograd.grad(li, params, create_graph=True, allow_unused=True,
                                        materialize_grads=True)
        norms.append(sum(g.square().sum() for g in grads))
    return torch.stack(norms)



@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_norms_and_their_gradients_match_a_per_example_loop(kind: str, backend: str) -> None:
    model = seeded(MODELS[kind])
    assert not uncovered_modules(model)
    x, t = data(kind, 5)
    expected = reference(model, x, t)
    got = per_example_sq_grad_norms(model, ce, x, t, backend=backend, create_graph=True)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=0)
    # differentiable: the gradient of a weighted sum of the norms matches too
    weights = torch.linspace(0.5, 1.5, len(x), dtype=torch.float64)
    params = list(model.parameters())
    g_got = torch.autograd.grad((weights * got).sum(), params)
    g_ref = torch.autograd.grad((weights * expected).sum(), params)
    for a, b in zip(g_got, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_backends_agree_to_1e5(backend: str) -> None:
    model = seeded(conv2d).float()
    x, t = data("conv2d", 16)
    expected = reference(model.double(), x, t).detach()
    got = per_example_sq_grad_norms(model.float(), ce, x.float(), t, backend=backend)
    # relative to each norm, and to the largest one for well-fit examples whose small gradient
    # is a float32 cancellation of larger terms
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6 * expected.max())
    assert not got.requires_grad  # create_graph=False gives detached norms


def test_frozen_parameters_are_excluded() -> None:
    model = seeded(sequence)
    model[1].bias.requires_grad_(False)
    model[3].weight.requires_grad_(False)
    model[0].requires_grad_(False)
    x, t = data("sequence", 4)
    expected = reference(model, x, t)
    for backend in BACKENDS:
        got = per_example_sq_grad_norms(model, ce, x, t, backend=backend)
        torch.testing.assert_close(got, expected.detach(), rtol=1e-9, atol=0)


def test_linear_on_a_single_example_is_the_outer_product_norm() -> None:
    # grad_W l = g a^T for l = <v, W a + b>: ||g a^T||^2 + ||g||^2 = |v|^2 |a|^2 + |v|^2
    layer = seeded(lambda: nn.Linear(3, 2))
    a = torch.tensor([[1.0, 2.0, 2.0]], dtype=torch.float64)
    v = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    got = per_example_sq_grad_norms(layer, lambda out, tt: (out * tt).sum(1), a, v,
                                    backend="ghost")
    torch.testing.assert_close(got, torch.tensor([25.0 * 9 + 25.0], dtype=torch.float64))


def test_uncovered_module_auto_falls_back_and_ghost_names_it() -> None:
    model = seeded(Scaled)
    x, t = data("scaled", 4)
    assert uncovered_modules(model) == [
        "Scaled (Scaled): no ghost rule for this module type"]
    with pytest.raises(ValueError, match=r"backend='ghost' cannot vouch .* Scaled \(Scaled\): "
                                         "no ghost rule"):
        per_example_sq_grad_norms(model, ce, x, t, backend="ghost")
    with pytest.warns(FallbackWarning, match="uses 'vmap' for Scaled"):
        got = per_example_sq_grad_norms(model, ce, x, t)
    torch.testing.assert_close(got, reference(model, x, t).detach(), rtol=1e-9, atol=0)
    choice = backend_choice(model)
    assert choice.backend == "vmap" and "no ghost rule" in choice.refused["ghost"]


def test_tied_parameters_are_not_ghost_covered() -> None:
    model = seeded(lambda: nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3)))
    model[2].weight = model[0].weight
    assert any("shares a parameter with 0" in p for p in uncovered_modules(model))
    x = torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.tensor([0, 1, 2])
    with pytest.warns(FallbackWarning, match="shares a parameter with 0"):
        got = per_example_sq_grad_norms(model, ce, x, t, backend="auto")
    torch.testing.assert_close(got, reference(model, x, t).detach(), rtol=1e-9, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_of_one(backend: str) -> None:
    model = seeded(conv1d)
    x, t = data("conv1d", 1)
    got = per_example_sq_grad_norms(model, ce, x, t, backend=backend)
    assert got.shape == (1,)
    torch.testing.assert_close(got, reference(model, x, t).detach(), rtol=1e-9, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"loss_fn": lambda o, t: ce(o, t).mean()}, ValueError,
         "per_example_loss returned a scalar"),
        ({"loss_fn": lambda o, t: ce(o, t)[:, None]}, ValueError,
         r"per-example losses of shape \[\d\], got \(\d, 1\)"),
        ({"loss_fn": lambda o, t: 1.0}, TypeError, "per_example_loss must return a tensor"),
        ({"loss_fn": 3}, TypeError, "per_example_loss must be callable"),
        ({"backend": "fast"}, ValueError, "backend must be one of"),
        ({"model": "mlp"}, TypeError, "model must be a torch.nn.Module"),
        ({"inputs": [1.0]}, TypeError, "inputs must be a tensor, or a tuple, list or dict "
                                       "holding tensors"),
        ({"inputs": 3}, TypeError, "inputs must be a tensor"),
        ({"inputs": {"x": torch.zeros(4, 6), "m": torch.zeros(3)}}, ValueError,
         r"the tensors of inputs must share their batch size \(dim 0\), got sizes \[3, 4\]"),
        ({"targets": torch.zeros(3, dtype=torch.long)}, ValueError, "batch size of inputs"),
        ({"inputs": torch.zeros(0, 6)}, ValueError, "inputs must have a non-empty batch"),
        ({"forward": "model"}, TypeError, "forward must be None or a callable"),
    ],
)
def test_bad_input(kwargs: dict, error: type, message: str) -> None:
    x, t = data("mlp", 4)
    args = {"model": seeded(mlp), "loss_fn": ce, "inputs": x, "targets": t, **kwargs}
    for backend in ("ghost", "vmap", "loop"):
        if "backend" in kwargs:
            backend = kwargs["backend"]
        with pytest.raises(error, match=message):
            per_example_sq_grad_norms(args["model"], args["loss_fn"], args["inputs"],
                                      args["targets"], backend=backend,
                                      forward=args.get("forward"))


def test_batchnorm_in_train_mode_is_refused_by_every_backend() -> None:
    model = seeded(conv2d)
    model[3].train()
    x, t = data("conv2d", 3)
    for backend in BACKENDS:
        with pytest.raises(ValueError, match=r"3 \(BatchNorm2d\) uses batch statistics"):
            per_example_sq_grad_norms(model, ce, x, t, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_change_of_a_layer_output_gives_the_same_norms(backend: str) -> None:
    """ReLU(inplace=True) rewrites the Linear output the ghost rule needs: it is cloned."""
    model = seeded(lambda: nn.Sequential(nn.Linear(6, 4), nn.ReLU(inplace=True), nn.Linear(4, 3)))
    x, t = data("mlp", 4)
    for _ in range(2):  # the first call finds the in-place change, the second clones at once
        got = per_example_sq_grad_norms(model, ce, x, t, backend=backend, create_graph=True)
        torch.testing.assert_close(got, reference(model, x, t), rtol=1e-9, atol=0)


def test_no_trainable_parameters() -> None:
    model = seeded(mlp).requires_grad_(False)
    x, t = data("mlp", 2)
    with pytest.raises(ValueError, match="no trainable parameters"):
        per_example_sq_grad_norms(model, ce, x, t)


@settings(max_examples=25, deadline=None)
@given(c=st.floats(0.1, 10.0), seed=st.integers(0, 10_000), batch=st.integers(1, 6),
       kind=st.sampled_from(["mlp", "sequence", "conv1d"]))
def test_property_scaling_and_permutation(c: float, seed: int, batch: int, kind: str) -> None:
    """Scaling the loss by c scales every norm by c^2; permuting the batch permutes the norms."""
    model = seeded(MODELS[kind], seed)
    x, t = data(kind, batch, seed)
    base = per_example_sq_grad_norms(model, ce, x, t, backend="ghost")
    scaled = per_example_sq_grad_norms(model, lambda o, tt: c * ce(o, tt), x, t, backend="ghost")
    torch.testing.assert_close(scaled, c * c * base, rtol=1e-10, atol=0)
    perm = torch.randperm(batch, generator=torch.Generator().manual_seed(seed))
    permuted = per_example_sq_grad_norms(model, ce, x[perm], t[perm], backend="ghost")
    torch.testing.assert_close(permuted, base[perm], rtol=1e-10, atol=0)


@pytest.mark.parametrize("backend", ["ghost", "vmap", "loop"])
def test_works_inside_no_grad(backend: str) -> None:
    model = seeded(mlp)
    x, t = data("mlp", 3)
    with torch.no_grad():
        got = per_example_sq_grad_norms(model, ce, x, t, backend=backend)
    torch.testing.assert_close(got, reference(model, x, t).detach(), rtol=1e-9, atol=0)
