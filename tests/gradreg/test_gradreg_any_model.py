"""Per-example norms and penalties on the models researchers bring (issue 15): every backend
either matches a per-example autograd loop written here or refuses, and ``auto`` always matches
it. Models: functional weight tying, a module shared and called twice, partly frozen attention,
a ResNet-style block with in-place ReLUs after eval BatchNorm, position embeddings without a
batch dimension, GRU / LSTM, a 0-d parameter, custom layers with registered rules, HF-style
dict batches and a transformer encoder layer."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_gradreg_norms import ce, reference, seeded
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from noisereg.gradreg import (
    PEGR,
    FallbackWarning,
    backend_choice,
    gr_penalty,
    pegr_penalty,
    per_example_sq_grad_norms,
    register_ghost_rule,
    regularized_loss,
)

BACKENDS = ("ghost", "vmap", "loop", "auto")
f64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def norms_quietly(model: nn.Module, x, t, backend: str, **kwargs) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        return per_example_sq_grad_norms(model, ce, x, t, backend=backend, **kwargs)


class TiedHead(nn.Module):
    """The output layer reuses the embedding matrix through F.linear (functional tying)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(7, 5)
        self.mix = nn.Linear(5, 5)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.tanh(self.mix(self.emb(idx))).mean(1), self.emb.weight)


class SharedTwice(nn.Module):
    """One Linear registered under two names and called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.second = self.first
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.second(torch.tanh(self.first(x)))))


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(6, 2, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.attn(x, x, x, need_weights=False)[0].mean(1))


class ResNetBlock(nn.Module):
    """torchvision-style: conv, eval BatchNorm, ReLU(inplace=True), residual added in place."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv1, self.bn1 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn0(self.stem(x)))
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(h)))))
        out += h
        return self.head(self.relu(out).mean((2, 3)))


class Positions(nn.Module):
    """Position embeddings looked up with ids of shape [1, T] (as HF GPT-2 / BERT do)."""

    def __init__(self) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(7, 5), nn.Embedding(9, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)[None]
        return self.head(torch.tanh(self.tok(idx) + self.pos(positions)).mean(1))


class Recurrent(nn.Module):
    def __init__(self, kind: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = kind(3, 4, batch_first=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


class Temperature(nn.Module):
    """Logits divided by a learned 0-d temperature."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.temperature = nn.Parameter(torch.tensor(1.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) / self.temperature


def tokens(batch: int, length: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = _gen(seed)
    return torch.randint(0, 7, (batch, length), generator=gen), torch.randint(0, 3, (batch,),
                                                                               generator=gen)


def floats(*shape: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = _gen(seed)
    return (torch.randn(shape, generator=gen, dtype=f64),
            torch.randint(0, 3, shape[:1], generator=gen))


def attention(frozen: tuple[str, ...]) -> nn.Module:
    model = seeded(Attention)
    for name in frozen:
        getattr(model.attn, name).requires_grad_(False)
    return model


def weight_normed() -> nn.Module:
    model = seeded(lambda: nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 3)))
    nn.utils.parametrizations.weight_norm(model[0])
    return model


# (model, batch, the backends that must refuse and a part of their reason)
CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[], tuple], dict[str, str]]] = {
    "functional tying": (lambda: seeded(TiedHead), lambda: tokens(5, seed=2),
                         {"ghost": "emb.weight gets gradient outside the calls of emb"}),
    "frozen in_proj, out_proj trains": (
        lambda: attention(("in_proj_weight", "in_proj_bias")), lambda: floats(4, 3, 6),
        {"ghost": r"attn.out_proj.weight gets gradient outside the calls of attn.out_proj"}),
    "frozen in_proj_weight": (
        lambda: attention(("in_proj_weight",)), lambda: floats(4, 3, 6),
        {"ghost": r"attn \(MultiheadAttention\): no ghost rule"}),
    "position ids [1, T]": (lambda: seeded(Positions), lambda: tokens(4),
                            {"ghost": r"pos \(Embedding\) does not keep the batch \(4\) on dim 0"}),
    "GRU": (lambda: seeded(lambda: Recurrent(nn.GRU)), lambda: floats(4, 5, 3),
            {"ghost": r"rnn \(GRU\): no ghost rule", "vmap": ""}),
    "LSTM": (lambda: seeded(lambda: Recurrent(nn.LSTM)), lambda: floats(4, 5, 3),
             {"ghost": r"rnn \(LSTM\): no ghost rule", "vmap": ""}),
    "0-d parameter": (lambda: seeded(Temperature), lambda: floats(4, 4),
                      {"ghost": r"Temperature \(Temperature\): no ghost rule"}),
    "weight_norm parametrization": (
        lambda: weight_normed(), lambda: floats(4, 4),
        {"ghost": r"0 \(ParametrizedLinear\): weight is computed from other parameters"}),
    "shared module called twice": (lambda: seeded(SharedTwice), lambda: floats(5, 4), {}),
    "ResNet block, in-place ReLU": (lambda: seeded(ResNetBlock).eval(),
                                    lambda: floats(3, 2, 5, 5), {}),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_every_backend_matches_the_loop_or_refuses(case: str, backend: str) -> None:
    build, batch, refusals = CASES[case]
    model = build()
    x, t = batch()
    if backend in refusals:
        if backend == "ghost":  # a clear refusal naming what the backend cannot account for
            with pytest.raises(ValueError, match="backend='ghost' cannot vouch for the norms "
                                                 f"of this model: .*{refusals['ghost']}"):
                per_example_sq_grad_norms(model, ce, x, t, backend=backend)
        else:  # torch.func cannot run recurrent layers: whatever torch raises
            with pytest.raises(RuntimeError):
                per_example_sq_grad_norms(model, ce, x, t, backend=backend)
        return
    expected = reference(model, x, t)
    params = [p for p in model.parameters() if p.requires_grad]
    got = norms_quietly(model, x, t, backend, create_graph=True)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=0)
    # the model keeps its own parameters (functional_call's weight tying would swap a module
    # registered under two names twice and leave a copy behind)
    assert all(a is b for a, b in zip(params, (p for p in model.parameters() if p.requires_grad)))
    # the penalty's gradient (double backward) matches the loop's too
    for a, b in zip(torch.autograd.grad(got.mean(), params),
                    torch.autograd.grad(expected.mean(), params)):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)
    if backend == "auto":  # the first backend that does not refuse, and the reasons recorded
        choice = backend_choice(model)
        assert choice.backend == next(b for b in BACKENDS if b not in refusals)
        assert set(choice.refused) == set(refusals)
        assert all(re.search(why, choice.refused[b]) for b, why in refusals.items())


def test_auto_warns_once_per_model_and_says_why() -> None:
    model = seeded(TiedHead)
    x, t = tokens(4, seed=3)
    with pytest.warns(FallbackWarning, match=r"uses 'vmap' for TiedHead \(ghost refused: "
                                             r"emb.weight gets gradient outside"):
        per_example_sq_grad_norms(model, ce, x, t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        per_example_sq_grad_norms(model, ce, x, t)


def test_tying_after_a_first_call_is_seen() -> None:
    """The cached validation is invalidated when a parameter is tied or frozen later."""
    model = seeded(lambda: nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3)))
    x, t = floats(4, 3)
    per_example_sq_grad_norms(model, ce, x, t)
    assert backend_choice(model).backend == "ghost"
    model[2].weight = model[0].weight
    torch.testing.assert_close(norms_quietly(model, x, t, "auto"), reference(model, x, t).detach(),
                               rtol=1e-9, atol=0)
    assert backend_choice(model).backend == "vmap"
    model[0].requires_grad_(False)
    torch.testing.assert_close(norms_quietly(model, x, t, "auto"), reference(model, x, t).detach(),
                               rtol=1e-9, atol=0)


class Scale(nn.Module):
    """out = x * weight (per feature): a custom layer given a ghost rule below."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class BadScale(Scale):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # its own class, for a wrong rule
        return x * self.weight


def scale_rule(module: nn.Module, calls: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """d l_i / d w_f = sum over positions of a_f g_f."""
    return sum((a * g).reshape(len(a), -1, a.shape[-1]).sum(1) for a, g in calls).square().sum(1)


def test_a_registered_rule_covers_a_custom_layer() -> None:
    model = seeded(lambda: nn.Sequential(nn.Linear(4, 4), Scale(), nn.Tanh(), nn.Linear(4, 3)))
    x, t = floats(5, 4)
    with pytest.raises(ValueError, match=r"1 \(Scale\): no ghost rule"):
        per_example_sq_grad_norms(model, ce, x, t, backend="ghost")
    register_ghost_rule(Scale, scale_rule)
    got = per_example_sq_grad_norms(model, ce, x, t, backend="ghost", create_graph=True)
    torch.testing.assert_close(got, reference(model, x, t), rtol=1e-9, atol=0)


def test_a_wrong_rule_is_caught_by_the_first_call_check() -> None:
    register_ghost_rule(BadScale, lambda m, calls: 2 * scale_rule(m, calls))
    model = seeded(lambda: nn.Sequential(nn.Linear(4, 4), BadScale(), nn.Tanh(), nn.Linear(4, 3)))
    x, t = floats(5, 4)
    with pytest.raises(ValueError, match="differs from the per-example loop's"):
        per_example_sq_grad_norms(model, ce, x, t, backend="ghost")
    torch.testing.assert_close(norms_quietly(model, x, t, "auto"), reference(model, x, t).detach(),
                               rtol=1e-9, atol=0)
    assert "differs from the per-example loop's" in backend_choice(model).refused["ghost"]


def test_register_ghost_rule_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"module_type must be a subclass of torch\.nn\.Module"):
        register_ghost_rule(int, scale_rule)
    with pytest.raises(TypeError, match="rule must be callable"):
        register_ghost_rule(Scale, None)


class Masked(nn.Module):
    """A HuggingFace-like signature: ids, attention mask and a non-tensor flag."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(7, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                scale: float = 1.0) -> torch.Tensor:
        mask = attention_mask[..., None]
        return scale * self.head((self.emb(input_ids) * mask).sum(1) / mask.sum(1))


def _hf_batch() -> tuple[dict, torch.Tensor]:
    ids, labels = tokens(4, seed=5)
    mask = torch.ones(4, 6, dtype=f64)
    mask[1, 4:] = 0
    mask[3, 2:] = 0
    return {"input_ids": ids, "attention_mask": mask, "scale": 2.0}, labels


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", ["dict", "tuple", "forward", "dict targets"])
def test_batches_as_dicts_tuples_or_a_forward_callable(fmt: str, backend: str) -> None:
    model = seeded(Masked)
    batch, labels = _hf_batch()
    expected = reference(model, batch, labels).detach()
    loss, targets, forward = ce, labels, None
    inputs: object = batch
    if fmt == "tuple":
        inputs = (batch["input_ids"], batch["attention_mask"], 2.0)
    elif fmt == "forward":
        forward = lambda m, b: 2.0 * m(b["input_ids"], b["attention_mask"])  # noqa: E731
        inputs = {k: v for k, v in batch.items() if k != "scale"}
    elif fmt == "dict targets":
        targets = {"labels": labels, "weights": torch.ones(4, dtype=f64)}
        loss = lambda out, t: t["weights"] * ce(out, t["labels"])  # noqa: E731
    got = per_example_sq_grad_norms(model, loss, inputs, targets, backend=backend,
                                    forward=forward)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=0)
    # the one-forward objective on the same batch: L_S + lam * P_PEGR
    total = regularized_loss(model, loss, inputs, targets, lam=0.5, backend=backend,
                             forward=forward)
    data = ce(model(**batch), labels).mean()
    torch.testing.assert_close(total, data + 0.5 * expected.mean(), rtol=1e-9, atol=0)


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(x).mean(1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pegr_and_gr_through_attention_on_cpu(dtype: torch.dtype) -> None:
    """Double backward through scaled-dot-product attention: the math kernel is selected."""
    model = seeded(Encoder).to(dtype)
    x, t = floats(3, 4, 8)
    x = x.to(dtype)
    expected = reference(model, x, t)
    tol = {"rtol": 1e-9, "atol": 0} if dtype == f64 else {"rtol": 1e-4, "atol": 1e-7}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        penalty = pegr_penalty(model, ce, x, t)
    torch.testing.assert_close(penalty, expected.mean(), **tol)
    params = list(model.parameters())
    with sdpa_kernel(SDPBackend.MATH):
        mean_grad = torch.autograd.grad(ce(model(x), t).mean(), params, create_graph=True)
    expected_gr = sum(g.square().sum() for g in mean_grad)
    gr = gr_penalty(model, ce, x, t)
    torch.testing.assert_close(gr, expected_gr, **tol)
    for a, b in zip(torch.autograd.grad(penalty + gr, params),
                    torch.autograd.grad(expected.mean() + expected_gr, params)):
        torch.testing.assert_close(a, b, rtol=tol["rtol"] * 100, atol=1e-6)


@pytest.mark.parametrize("lam", [np.float32(0.5), np.float64(0.5), torch.tensor(0.5)])
def test_numpy_and_0d_tensor_lambdas(lam) -> None:
    model = seeded(lambda: nn.Sequential(nn.Linear(4, 3)))
    x, t = floats(3, 4)
    expected = regularized_loss(model, ce, x, t, lam=0.5)
    torch.testing.assert_close(regularized_loss(model, ce, x, t, lam=lam), expected)
    torch.testing.assert_close(PEGR(model, ce, lam)(x, t), expected)
    with pytest.raises(ValueError, match="lam must be a finite number"):
        regularized_loss(model, ce, x, t, lam=torch.tensor([0.5]))


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-9), (torch.float32, 1e-5),
                                             (torch.bfloat16, 5e-2)])
def test_every_entry_point_on_the_parameters_device_and_dtype(device: str, dtype: torch.dtype,
                                                              rtol: float) -> None:
    model = seeded(lambda: nn.Sequential(nn.Embedding(7, 6), nn.Linear(6, 8), nn.LayerNorm(8),
                                         nn.Tanh(), nn.Linear(8, 3)))
    ids, t = tokens(6, length=4, seed=7)
    head = lambda out, tt: ce(out.mean(1), tt)  # noqa: E731
    expected = reference(model, ids, t, loss=head).detach()
    params = list(model.parameters())
    mean_grad = torch.autograd.grad(head(model(ids), t).mean(), params)
    expected_gr = sum(g.square().sum() for g in mean_grad)
    model.to(device=device, dtype=dtype)
    ids, t = ids.to(device), t.to(device)
    for backend in ("ghost", "vmap", "loop", "auto"):
        got = per_example_sq_grad_norms(model, head, ids, t, backend=backend)
        assert got.device.type == device and got.dtype == dtype
        torch.testing.assert_close(got.double().cpu(), expected, rtol=rtol, atol=0)
        penalty = pegr_penalty(model, head, ids, t, backend=backend)
        torch.testing.assert_close(penalty.double().cpu(), expected.mean(), rtol=rtol, atol=0)
    gr = gr_penalty(model, head, ids, t)
    torch.testing.assert_close(gr.double().cpu(), expected_gr, rtol=rtol, atol=0)
    regularized_loss(model, head, ids, t, lam=0.1).backward()
    assert all(p.grad.device.type == device and p.grad.dtype == dtype
               for p in model.parameters())
