"""Function geometry along segments: exact answers on hand-built functions, finite differences,
torch.func references and closed-form breakpoints of one-hidden-layer ReLU networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from noisereg._seeding import torch_generator
from noisereg.diagnostics import segment_measures, segment_profiles
from noisereg.diagnostics.geometry import (
    DEFAULT_MEASURES,
    MEASURES,
    local_complexity,
    profile_measures,
)
from noisereg.models.mlp import MLP

f64 = torch.float64


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch_generator(seed, "data"), dtype=f64)


def _linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Linear:
    """A float64 Linear with the given parameters (no default initialisation)."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta",
                      dtype=f64).to_empty(device="cpu")
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def _one_hidden(d: int, hidden: int, out: int, seed: int) -> nn.Sequential:
    return nn.Sequential(_linear(_randn(hidden, d, seed=seed), _randn(hidden, seed=seed + 1)),
                         nn.ReLU(),
                         _linear(_randn(out, hidden, seed=seed + 2), _randn(out, seed=seed + 3)))


# ----------------------------------------------------------------------------- exact answers


def test_affine_function_is_perfectly_straight():
    a, c = _randn(3, 5, seed=0), _randn(3, seed=1)
    f = _linear(a, c)
    xa, xb = _randn(4, 5, seed=2), _randn(4, 5, seed=3)
    names = [n for n, m in MEASURES.items() if m.needs in (None, "gradients")]
    result = segment_measures(f, xa, xb, points=33, measures=names)
    for name in ("gradient_gap_deviation", "relative_gradient_gap_deviation",
                 "gradient_deflection", "gradient_angle_deflection", "sagitta",
                 "relative_sagitta", "gradient_path_length"):
        assert float(result.values[name].abs().max()) < 1e-12, name
    v = xb - xa
    assert torch.allclose(result.values["input_gradient_norm"],
                          torch.linalg.matrix_norm(a).expand(4), rtol=1e-12)
    assert torch.allclose(result.values["function_path_length"], (v @ a.T).norm(dim=1),
                          rtol=1e-12)
    assert torch.allclose(result.profiles.dg, (v @ a.T)[:, None].expand(4, 33, 3), rtol=1e-12)


def test_quadratic_gives_the_closed_form_gap_deviation_deflection_and_sagitta():
    d = 4
    a_mat, b_mat = _randn(d, d, seed=0), _randn(d, d, seed=1)
    a_mat, b_mat = a_mat + a_mat.T, b_mat + b_mat.T
    lin = _randn(d, seed=2)

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([0.5 * ((x @ a_mat) * x).sum(1) + x @ lin,
                            0.5 * ((x @ b_mat) * x).sum(1)], dim=1)

    xa, xb = _randn(1, d, seed=3), _randn(1, d, seed=4)
    v = (xb - xa)[0]
    length = float(v.norm())
    # Along the segment g(t) = a t^2 + beta t + gamma with a = v^T M v / 2, so
    # g'(t) - s = a (2t - 1) and mean_k (2 t_k - 1)^2 = (T + 1) / (3 (T - 1)) on t_k = k/(T-1).
    curv = np.array([0.5 * float(v @ a_mat @ v), 0.5 * float(v @ b_mat @ v)])
    beta = np.array([float((a_mat @ xa[0] + lin) @ v), float((b_mat @ xa[0]) @ v)])
    for points in (129, 10):
        result = segment_measures(f, xa, xb, points=points,
                                  measures=["gradient_gap_deviation", "gradient_deflection",
                                            "sagitta", "relative_gradient_gap_deviation",
                                            "relative_sagitta", "gradient_path_length"],
                                  output_scale=torch.tensor([2.0, 0.5], dtype=f64))
        ggd = np.abs(curv) * math.sqrt((points + 1) / (3 * (points - 1))) / length
        np.testing.assert_allclose(result.values["gradient_gap_deviation"][0], ggd, rtol=1e-10)
        np.testing.assert_allclose(result.values["gradient_deflection"][0],
                                   2 * np.abs(curv) / length, rtol=1e-10)
        t = np.linspace(0, 1, points)
        sagitta = np.abs(curv) * np.max(t * (1 - t))
        np.testing.assert_allclose(result.values["sagitta"][0], sagitta, rtol=1e-10)
        np.testing.assert_allclose(result.values["relative_sagitta"][0],
                                   sagitta / np.array([2.0, 0.5]), rtol=1e-10)
        # RMS of g'/L over the grid: mean t = 1/2, mean t^2 = (2T - 1) / (6 (T - 1)).
        mean_sq = (4 * curv**2 * (2 * points - 1) / (6 * (points - 1)) + 2 * curv * beta
                   + beta**2)
        np.testing.assert_allclose(result.values["relative_gradient_gap_deviation"][0],
                                   ggd / (np.sqrt(mean_sq) / length), rtol=1e-10)
        # J(x) = [M_o x + ...]: each step changes it by [A v, B v] / (T - 1).
        np.testing.assert_allclose(float(result.values["gradient_path_length"][0]),
                                   float(torch.stack([a_mat @ v, b_mat @ v]).norm()),
                                   rtol=1e-10)
    assert torch.allclose(result.slope_scale, torch.as_tensor(np.sqrt(mean_sq) / length))


def test_single_relu_kink_gives_the_slope_jump_and_one_kink():
    d, kink = 3, 0.3
    xa = _randn(2, d, seed=0)
    xb = xa + _randn(2, d, seed=1)
    w = torch.tensor([[2.0, -1.0, 0.5]], dtype=f64)
    v = xb - xa
    slope = (v @ w.T)[:, 0]
    # Each pair gets its own ReLU with its kink at t = 0.3 (off the grid: 0.3 * 128 = 38.4).
    for p in range(2):
        bias = -(xa[p] @ w[0]) - kink * slope[p]
        f = nn.Sequential(_linear(w, bias.reshape(1)), nn.ReLU())
        result = segment_measures(f, xa[p:p + 1], xb[p:p + 1],
                                  measures=[*DEFAULT_MEASURES, "neuron_flips"])
        length = float(v[p].norm())
        assert float(result.values["gradient_deflection"][0, 0]) == pytest.approx(
            abs(float(slope[p])) / length, rel=1e-12)
        assert float(result.values["kinks"][0]) == 1
        assert float(result.values["neuron_flips"][0]) == 1
        # One side has a zero gradient, the other w: cos = 0 by convention.
        assert float(result.values["gradient_angle_deflection"][0, 0]) == pytest.approx(1.0)
        t = np.linspace(0, 1, 129)
        g = np.maximum(float(slope[p]) * (t - kink), 0.0)
        chord = g[0] + t * (g[-1] - g[0])
        assert float(result.values["sagitta"][0, 0]) == pytest.approx(np.abs(g - chord).max())
        gap = np.where(float(slope[p]) * (t - kink) > 0, float(slope[p]), 0.0) - (g[-1] - g[0])
        assert float(result.values["gradient_gap_deviation"][0, 0]) == pytest.approx(
            math.sqrt(np.mean(gap**2)) / length)


def test_angle_deflection_of_a_gradient_turn():
    d, kink = 4, 0.6
    xa, xb = _randn(1, d, seed=5), _randn(1, d, seed=6)
    w = _randn(2, d, seed=7)
    v = (xb - xa)[0]
    # Neuron 0 stays active (large bias); neuron 1 switches at t = 0.6: grad w0 -> w0 + w1 or
    # w0 + w1 -> w0, depending on the sign of w1.v.
    bias = torch.stack([torch.tensor(100.0, dtype=f64), -(xa[0] @ w[1]) - kink * (v @ w[1])])
    f = nn.Sequential(_linear(w, bias), nn.ReLU(), _linear(torch.ones(1, 2, dtype=f64)))
    result = segment_measures(f, xa, xb, points=65)
    cos = float(w[0] @ (w[0] + w[1]) / (w[0].norm() * (w[0] + w[1]).norm()))
    assert float(result.values["gradient_angle_deflection"][0, 0]) == pytest.approx(1 - cos)
    assert float(result.values["gradient_deflection"][0, 0]) == pytest.approx(
        abs(float(w[1] @ v)) / float(v.norm()))
    assert float(result.values["kinks"][0]) == 1


def test_first_layer_breakpoints_match_the_kinks_of_a_one_hidden_layer_net():
    d, hidden, points = 6, 40, 65
    f = _one_hidden(d, hidden, 3, seed=10)
    xa, xb = _randn(8, d, seed=20), _randn(8, d, seed=21)
    profiles = segment_profiles(f, xa, xb, points=points)
    w, b = f[0].weight.detach(), f[0].bias.detach()
    v = xb - xa
    crossing = -(xa @ w.T + b) / (v @ w.T)  # t_i = -(w_i.x_a + b_i) / (w_i.v)
    shared = 0
    for p in range(8):
        inside = crossing[p][(crossing[p] > 0) & (crossing[p] < 1)].numpy()
        intervals = np.unique(np.floor(inside * (points - 1)))
        assert int(profiles.flips[p].sum()) == len(inside)
        assert int((profiles.flips[p] > 0).sum()) == len(intervals)
        assert sorted(profiles.flips[p].nonzero()[:, 0].tolist()) == intervals.tolist()
        shared += len(inside) - len(intervals)
    assert profiles.neurons == hidden
    assert shared > 0  # some steps cross several hyperplanes: kinks < neuron flips there


@pytest.mark.parametrize("relu", [
    torch.nn.functional.relu, torch.relu, torch.Tensor.relu,
    lambda h: torch.nn.functional.relu(h, inplace=True)], ids=["F", "torch", "method", "inplace"])
@pytest.mark.parametrize("gradients", [False, True])
def test_functional_relus_give_the_kinks_of_the_closed_form(relu, gradients):
    """The net of the test above written with a functional ReLU (no nn.ReLU to hook): the
    default measures keep kinks, which count the first-layer hyperplanes crossed."""
    d, hidden, points = 4, 12, 33
    net = _one_hidden(d, hidden, 2, seed=30)
    first, second = net[0], net[2]
    xa, xb = _randn(5, d, seed=31), _randn(5, d, seed=32)
    w, b = first.weight.detach(), first.bias.detach()
    v = xb - xa
    crossing = -(xa @ w.T + b) / (v @ w.T)
    inside = (crossing > 0) & (crossing < 1)
    expected_kinks = torch.tensor([len(np.unique(np.floor(c[m].numpy() * (points - 1))))
                                   for c, m in zip(crossing, inside)], dtype=f64)
    result = segment_measures(lambda x: second(relu(first(x))), xa, xb, points=points,
                              measures=None if not gradients else
                              [*DEFAULT_MEASURES, "neuron_flips"])
    assert "kinks" in result.values
    torch.testing.assert_close(result.values["kinks"], expected_kinks)
    assert result.profiles.neurons == hidden
    torch.testing.assert_close(result.profiles.flips.sum(1), inside.sum(1))


def test_a_function_without_relu_has_no_kinks_to_count():
    f = _linear(_randn(2, 3, seed=40))
    xa, xb = _randn(2, 3, seed=41), _randn(2, 3, seed=42)
    assert "kinks" not in segment_measures(lambda x: torch.tanh(f(x)), xa, xb, points=5).values
    with pytest.raises(ValueError, match=r"kinks.* needs ReLU activations in f"):
        segment_measures(lambda x: torch.tanh(f(x)), xa, xb, points=5, measures=["kinks"])


# ----------------------------------------------------------------------------- derivatives


def _tanh_net(seed: int) -> nn.Sequential:
    return nn.Sequential(_linear(_randn(16, 5, seed=seed), _randn(16, seed=seed + 1)), nn.Tanh(),
                         _linear(_randn(3, 16, seed=seed + 2) / 4, _randn(3, seed=seed + 3)))


@pytest.mark.parametrize("net", ["tanh", "relu"])
def test_slopes_equal_central_finite_differences(net: str):
    f = _tanh_net(0) if net == "tanh" else MLP(5, [32, 32], 3, seed=1).double()
    xa, xb = _randn(3, 5, seed=30), _randn(3, 5, seed=31)
    points, h = 17, 1e-6
    profiles = segment_profiles(f, xa, xb, points=points)
    t = torch.linspace(0, 1, points, dtype=f64)
    with torch.no_grad():
        for p in range(3):
            plus = f(xa[p] + (t[:, None] + h) * (xb[p] - xa[p]))
            minus = f(xa[p] + (t[:, None] - h) * (xb[p] - xa[p]))
            torch.testing.assert_close(profiles.dg[p], (plus - minus) / (2 * h), rtol=1e-6,
                                       atol=1e-7)
            torch.testing.assert_close(profiles.g[p], f(torch.lerp(xa[p], xb[p], t[:, None])))


def test_slopes_of_image_shaped_inputs_equal_torch_func_jvp():
    # MLP flattens (n, 1, 2, 3) images: the first layer sees a view of the input tangent.
    f = MLP(6, [8, 8], 4, seed=5).double()
    xa, xb = _randn(3, 1, 2, 3, seed=35), _randn(3, 1, 2, 3, seed=36)
    profiles = segment_profiles(f, xa, xb, points=7)
    t = torch.linspace(0, 1, 7, dtype=f64).reshape(1, 7, 1, 1, 1)
    x = torch.lerp(xa[:, None], xb[:, None], t).flatten(0, 1)
    v = (xb - xa).repeat_interleave(7, dim=0)
    values, slopes = torch.func.jvp(f, (x,), (v,))
    torch.testing.assert_close(profiles.g, values.reshape(3, 7, 4))
    torch.testing.assert_close(profiles.dg, slopes.reshape(3, 7, 4))


def test_gradient_pass_matches_torch_func_jacobians():
    f = _tanh_net(3)
    xa, xb = _randn(2, 5, seed=40), _randn(2, 5, seed=41)
    fast = segment_profiles(f, xa, xb, points=9)
    full = segment_profiles(f, xa, xb, points=9, input_gradients=True)
    torch.testing.assert_close(full.dg, fast.dg)
    t = torch.linspace(0, 1, 9, dtype=f64)
    for p in range(2):
        x = torch.lerp(xa[p], xb[p], t[:, None])
        jac = torch.vmap(torch.func.jacrev(lambda z: f(z[None])[0]))(x)  # (T, O, d)
        torch.testing.assert_close(full.input_gradients[p], jac)
        torch.testing.assert_close(full.grad_norms[p], jac.norm(dim=-1))
        torch.testing.assert_close(full.jacobian_steps[p], jac.diff(dim=0).flatten(1).norm(dim=1))
        cos = torch.nn.functional.cosine_similarity(jac[1:], jac[:-1], dim=-1)
        torch.testing.assert_close(full.grad_cosines[p], cos)


def test_chunking_does_not_change_the_profiles():
    f = MLP(5, [16], 2, seed=2).double()
    xa, xb = _randn(5, 5, seed=50), _randn(5, 5, seed=51)
    whole = segment_profiles(f, xa, xb, points=11, gradients=True)
    pieces = segment_profiles(f, xa, xb, points=11, gradients=True, chunk=1)
    for name in ("g", "dg", "flips", "grad_norms", "grad_cosines", "jacobian_steps"):
        torch.testing.assert_close(getattr(pieces, name), getattr(whole, name))


# ----------------------------------------------------------------------------- complexity


def test_local_complexity_counts_first_layer_hyperplanes_cutting_the_cross_polytope():
    d, hidden, radius = 5, 60, 0.4
    f = _one_hidden(d, hidden, 2, seed=60)
    x = _randn(20, d, seed=61)
    counts = local_complexity(f, x, radius=radius, directions=torch.eye(d, dtype=f64))
    w, b = f[0].weight.detach(), f[0].bias.detach()
    # The hyperplane w.z + b = 0 meets the l1 ball of radius r around x iff
    # |w.x + b| <= r ||w||_inf.
    expected = ((x @ w.T + b).abs() < radius * w.abs().amax(1)).sum(1)
    torch.testing.assert_close(counts, expected.to(f64))
    assert 0 < float(counts.mean()) < hidden


def test_local_complexity_along_segments_and_seeded_directions():
    f = _one_hidden(4, 30, 2, seed=70)
    xa, xb = _randn(3, 4, seed=71), _randn(3, 4, seed=72)
    result = segment_measures(f, xa, xb, points=5, measures=["local_complexity"],
                              complexity_radius=0.3, directions=3, seed=4)
    x = torch.lerp(xa[:, None], xb[:, None], torch.linspace(0, 1, 5, dtype=f64)[:, None])
    again = local_complexity(f, x.reshape(15, 4), radius=0.3, directions=3, seed=4)
    torch.testing.assert_close(result.values["local_complexity"], again.reshape(3, 5).mean(1))
    # d seeded orthonormal directions: a neuron is cut iff |w.x + b| < r max_j |w.q_j|, and
    # ||w|| / sqrt(d) <= max_j |w.q_j| <= ||w|| for any orthonormal basis.
    w, b = f[0].weight.detach(), f[0].bias.detach()
    points = x.reshape(15, 4)
    full = local_complexity(f, points, radius=0.3, directions=4, seed=9)
    pre, norm = (points @ w.T + b).abs(), w.norm(dim=1)
    assert (full >= (pre < 0.3 * norm / 2).sum(1)).all()
    assert (full <= (pre < 0.3 * norm).sum(1)).all()
    assert ((pre < 0.3 * norm).sum(1) > (pre < 0.3 * norm / 2).sum(1)).any()


# ----------------------------------------------------------------------------- summaries, inputs


def test_summary_is_the_mean_and_std_over_pairs_of_the_output_average():
    f = MLP(5, [16], 3, seed=3).double()
    xa, xb = _randn(6, 5, seed=80), _randn(6, 5, seed=81)
    result = segment_measures(f, xa, xb, points=9)
    summary = result.summary()
    assert set(summary) == set(DEFAULT_MEASURES)
    ggd = result.values["gradient_gap_deviation"].numpy()
    assert ggd.shape == (6, 3)
    assert summary["gradient_gap_deviation"]["mean"] == pytest.approx(ggd.mean(1).mean())
    assert summary["gradient_gap_deviation"]["std"] == pytest.approx(ggd.mean(1).std())
    again = profile_measures(result.profiles, ["kinks"])
    torch.testing.assert_close(again.values["kinks"], result.values["kinks"])


def test_bad_inputs_raise_errors_naming_the_parameter():
    f = MLP(3, [4], 2, seed=0)
    xa, xb = torch.zeros(2, 3), torch.ones(2, 3)
    cases = [
        (lambda: segment_profiles(f, xa, xb[:1]), "xa and xb"),
        (lambda: segment_profiles(f, xa, xb.double()), "xa and xb"),
        (lambda: segment_profiles(f, xa, torch.cat([xb[:1], xa[1:]])), "pair 1"),
        (lambda: segment_profiles(f, xa, xb, points=2), "points"),
        (lambda: segment_profiles(f, xa, xb, chunk=0), "chunk"),
        (lambda: segment_profiles(f, torch.zeros(3), torch.ones(3)), "xa"),
        (lambda: segment_profiles(f, xa, xb * float("nan")), "xb"),
        (lambda: segment_profiles(lambda x: x.sum(), xa, xb), "f must map"),
        (lambda: segment_profiles(f, xa, xb, complexity_radius=-1.0), "complexity_radius"),
        (lambda: segment_measures(f, xa, xb, measures=["curvature"]), "measures"),
        (lambda: segment_measures(f, xa, xb, measures=[]), "measures"),
        (lambda: segment_measures(f, xa, xb, measures=["kinks"], activations=()), "kinks"),
        (lambda: segment_measures(f, xa, xb, output_scale=-1.0), "output_scale"),
        (lambda: profile_measures(segment_profiles(f, xa, xb), ["gradient_path_length"]),
         "gradients=True"),
        (lambda: local_complexity(f, xa, radius=0.0), "radius"),
        (lambda: local_complexity(f, xa, radius=0.1, directions=4), "directions"),
        (lambda: local_complexity(torch.tanh, xa, radius=0.1, directions=2), "activations"),
    ]
    for call, text in cases:
        with pytest.raises(ValueError, match=text):
            call()
    with pytest.raises(TypeError, match="f must be callable"):
        segment_profiles(3, xa, xb)
    with pytest.raises(TypeError, match="measures"):
        segment_measures(f, xa, xb, measures="kinks")
    with pytest.raises(TypeError, match="activations"):
        segment_profiles(f, xa, xb, activations=nn.ReLU())
