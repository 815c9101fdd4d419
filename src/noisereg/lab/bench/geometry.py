"""Speed of the function-geometry measures (Kubo et al. 2019) against plain forward passes."""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as fwAD

from noisereg._seeding import torch_generator
from noisereg.diagnostics.geometry import DEFAULT_MEASURES, MEASURES, segment_measures
from noisereg.diagnostics.geometry.profiles import segment_points, segment_profiles
from noisereg.lab.bench import Target, side_by_side
from noisereg.models.mlp import MLP

PAIRS, POINTS, CHUNK = 64, 129, 4096
TANGENT_MEASURES = [m for m in DEFAULT_MEASURES if MEASURES[m].needs != "gradients"]


def _setup() -> tuple[MLP, torch.Tensor, torch.Tensor]:
    model = MLP(784, [1024, 1024, 1024], 10, seed=0)
    gen = torch_generator(1, "data")
    return model, torch.rand(PAIRS, 784, generator=gen), torch.rand(PAIRS, 784, generator=gen)


def _ratio(measures: list[str]) -> float:
    model, xa, xb = _setup()
    t = torch.linspace(0, 1, POINTS)
    per_chunk = CHUNK // POINTS

    @torch.no_grad()
    def forward() -> None:
        for start in range(0, PAIRS, per_chunk):
            model(segment_points(xa[start:start + per_chunk], xb[start:start + per_chunk], t))

    def measure() -> None:
        segment_measures(model, xa, xb, points=POINTS, chunk=CHUNK, measures=measures)

    times = side_by_side({"forward": forward, "measures": measure}, repeats=5, warmup=1)
    return times["measures"] / times["forward"]


def _tangent_rule_ratio() -> float:
    """segment_profiles' forward-mode pass (values and slopes, no activation hooks) over a plain
    torch.autograd.forward_ad JVP of the same points and directions."""
    model, xa, xb = _setup()
    xa, xb = xa[:RULE_PAIRS], xb[:RULE_PAIRS]
    t = torch.linspace(0, 1, POINTS)
    x = segment_points(xa, xb, t)
    v = (xb - xa).repeat_interleave(POINTS, dim=0)

    @torch.no_grad()
    def plain() -> None:
        with fwAD.dual_level():
            fwAD.unpack_dual(model(fwAD.make_dual(x, v)))

    def library() -> None:
        segment_profiles(model, xa, xb, points=POINTS, chunk=CHUNK, activations=())

    times = side_by_side({"plain": plain, "library": library}, repeats=7, warmup=1)
    return times["library"] / times["plain"]


RULE_PAIRS = 16
TARGETS = [
    Target("geometry-linear-tangent-rule",
           f"segment_profiles' forward-mode pass, whose F.linear tangent rule (a "
           f"TorchFunctionMode) skips the matmul with the weight's zero tangent, over a plain "
           f"forward_ad JVP of the same points: 784-1024-1024-1024-10 MLP, {RULE_PAIRS} pairs x "
           f"{POINTS} points. Measured 0.62-0.65 when kept (issue 12; the plain JVP ~1.5x "
           f"slower); a ratio near 1 would mean the rule no longer pays",
           "<=", 0.8, "x plain", _tangent_rule_ratio),
    Target("geometry-measures-vs-forward",
           f"GGD, deflection, sagitta, relative measures and kinks (one forward-mode pass with "
           f"activation hooks) over the forward passes on the same points: 784-1024-1024-1024-10 "
           f"ReLU MLP, {PAIRS} pairs x {POINTS} points (the issue's 256 pairs give the same "
           f"ratio at 4x the bench time on 2 cores)",
           "<=", 3.0, "x forward", lambda: _ratio(TANGENT_MEASURES)),
    Target("geometry-angle-deflection-vs-forward",
           f"all default measures incl. the gradient angle deflection, which needs the input "
           f"gradient of each of the 10 logits (a forward and 10 backward passes, ~11 forwards "
           f"of matmuls; goal: within 2x of that) over the forward passes; same MLP, "
           f"{PAIRS} x {POINTS} points",
           "<=", 22.0, "x forward", lambda: _ratio(list(DEFAULT_MEASURES))),
]
