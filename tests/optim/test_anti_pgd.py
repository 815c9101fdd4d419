"""AntiPGD against PGD on z = w - xi, a plain reference loop, and the torch.optim contract."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from noisereg.optim import AntiPGD, PerturbedOptimizer

SGD = torch.optim.SGD


def _xi(opt: AntiPGD, model: nn.Module) -> list[torch.Tensor]:
    return [opt.xi(p).clone() for p in model.parameters()]


def test_anti_pgd_is_pgd_on_z_for_plain_sgd(problem):
    """w_{n+1} = w_n - lr grad L(w_n) + xi_{n+1} - xi_n  <=>  z_{n+1} = z_n - lr grad L(z_n + xi_n)
    with z = w - xi; PGD draws the same xi_n (same stream) as its perturbation at step n."""
    sigma, lr = 0.05, 0.1
    w_model, z_model = problem.model(), problem.model()
    anti = AntiPGD(w_model.parameters(), SGD, sigma=sigma, seed=4, lr=lr)
    pgd = PerturbedOptimizer(z_model.parameters(), SGD, sigma=sigma, seed=4, lr=lr)
    with torch.no_grad(), pgd.perturbed(0):
        xi0 = [p - w for p, w in zip(z_model.parameters(), problem.params(w_model))]
    with torch.no_grad():
        for p, x in zip(z_model.parameters(), xi0):
            p.sub_(x)  # z_0 = w_0 - xi_0
    for _ in range(25):
        anti.step(problem.closure(w_model, anti))
        pgd.step(problem.closure(z_model, pgd))
        z = [w - x for w, x in zip(problem.params(w_model), _xi(anti, w_model))]
        for a, b in zip(z, problem.params(z_model)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def _base_step_from(problem, model: nn.Module, opt: AntiPGD) -> list[torch.Tensor]:
    """The weights after one plain base step from the current weights and base state."""
    clone = copy.deepcopy(model)
    ref = type(opt.base)(clone.parameters(), lr=0.0)
    ref.load_state_dict(copy.deepcopy(opt.base.state_dict()))
    problem.closure(clone, ref)()
    ref.step()
    return problem.params(clone)


@pytest.mark.parametrize(("base", "kw"), [(SGD, {"lr": 0.05, "momentum": 0.9}),
                                          (torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.9)})])
def test_noise_is_added_after_the_base_step_unscaled_and_unfiltered(problem, base, kw):
    """w_{n+1} = base_step(w_n) + (xi_{n+1} - xi_n): momentum / Adam see only the gradients."""
    model = problem.model()
    opt = AntiPGD(model.parameters(), base, sigma=0.02, **kw)
    opt.step(problem.closure(model, opt))  # xi_0 is drawn inside the first step
    for _ in range(6):
        old = _xi(opt, model)
        stepped = _base_step_from(problem, model, opt)
        opt.step(problem.closure(model, opt))
        new = _xi(opt, model)
        expected = [w + (x1 - x0) for w, x1, x0 in zip(stepped, new, old)]
        assert problem.same(problem.params(model), expected)
        assert not problem.same(new, old)


def test_xi_has_std_sigma():
    p = nn.Parameter(torch.zeros(200000, dtype=torch.float64))
    opt = AntiPGD([p], SGD, sigma=0.3, lr=0.1)
    p.grad = torch.zeros_like(p)
    opt.step()
    xi = opt.xi(p)
    assert abs(float(xi.std()) / 0.3 - 1) < 0.01 and abs(float(xi.mean())) < 0.003
    # w_1 = w_0 + xi_1 - xi_0 with a zero gradient: the increment has variance 2 sigma^2
    assert abs(float(p.detach().std()) / (0.3 * math.sqrt(2)) - 1) < 0.01


def test_sigma_zero_is_the_base_step_and_switching_off_subtracts_xi(problem):
    a, b = problem.model(), problem.model()
    opt = AntiPGD(a.parameters(), SGD, sigma=0.0, lr=0.1, momentum=0.9)
    ref = SGD(b.parameters(), lr=0.1, momentum=0.9)
    for _ in range(4):
        opt.step(problem.closure(a, opt))
        problem.closure(b, ref)()
        ref.step()
        assert all(not x.any() for x in _xi(opt, a))
    assert problem.same(problem.params(a), problem.params(b))
    for group in opt.param_groups:
        group["sigma"] = 0.1
    opt.step(problem.closure(a, opt))
    xi = _xi(opt, a)
    assert all(x.any() for x in xi)
    for group in opt.param_groups:
        group["sigma"] = 0.0
    stepped = _base_step_from(problem, a, opt)
    opt.step(problem.closure(a, opt))  # xi_{n+1} = 0: w = base_step(w) - xi_n = base_step(z)
    assert problem.same(problem.params(a), [w - x for w, x in zip(stepped, xi)])
    assert all(not x.any() for x in _xi(opt, a))


def test_precomputed_gradients_or_closure_give_the_same_step(problem):
    a, b = problem.model(), problem.model()
    oa = AntiPGD(a.parameters(), SGD, sigma=0.05, lr=0.1)
    ob = AntiPGD(b.parameters(), SGD, sigma=0.05, lr=0.1)
    for _ in range(3):
        la = oa.step(problem.closure(a, oa))
        lb = problem.closure(b, ob)()
        assert ob.step() is None and torch.equal(la, lb)
    assert problem.same(problem.params(a), problem.params(b))


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(before=st.integers(0, 4), after=st.integers(1, 4), momentum=st.sampled_from([0.0, 0.9]),
       seed=st.integers(0, 2**31))
def test_state_dict_round_trip_keeps_xi(problem, before, after, momentum, seed):
    model = problem.model()
    opt = AntiPGD(model.parameters(), SGD, sigma=0.05, seed=seed, lr=0.1, momentum=momentum)
    for _ in range(before):
        opt.step(problem.closure(model, opt))
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    for _ in range(after):
        opt.step(problem.closure(model, opt))
    buffer.seek(0)
    saved = torch.load(buffer)
    resumed = problem.model()
    resumed.load_state_dict(saved["model"])
    fresh = AntiPGD(resumed.parameters(), SGD, sigma=0.05, lr=0.1, momentum=momentum)
    fresh.load_state_dict(saved["opt"])
    assert len(saved["opt"]["noise"]["xi"]) == (6 if before else 0)
    for _ in range(after):
        fresh.step(problem.closure(resumed, fresh))
    assert problem.same(problem.params(model), problem.params(resumed))
    assert problem.same(_xi(opt, model), _xi(fresh, resumed))


def test_bad_input_is_refused(problem):
    model = problem.model()
    with pytest.raises(ValueError, match="sigma"):
        AntiPGD(model.parameters(), SGD, sigma=-1.0, lr=0.1)
    with pytest.raises(ValueError, match="sigma"):
        AntiPGD(model.parameters(), SGD, sigma=math.inf, lr=0.1)
    with pytest.raises(TypeError, match="base"):
        AntiPGD(model.parameters(), "SGD", sigma=0.1, lr=0.1)
    opt = AntiPGD(model.parameters(), SGD, sigma=0.1, lr=0.1)
    with pytest.raises(RuntimeError, match="backward"):
        opt.step()
    before = problem.params(model)
    with pytest.raises(FloatingPointError, match="step 0"):
        opt.step(lambda: problem.closure(model, opt)() * math.nan)
    assert problem.same(problem.params(model), before)
    with pytest.raises(ValueError, match="xi"):
        state = opt.state_dict()
        state["noise"]["xi"] = {99: torch.zeros(1)}
        opt.load_state_dict(state)


def _snapshot(model: nn.Module, opt: AntiPGD) -> tuple[list[torch.Tensor], bytes]:
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    return [p.detach().clone() for p in model.parameters()], buffer.getvalue()


@pytest.mark.parametrize(("dtype", "sigma"), [(torch.float64, 1e308), (torch.float32, 1e300)])
def test_non_finite_noise_is_refused_before_the_weights_or_the_state_change(problem, dtype,
                                                                          sigma):
    """A sigma whose draws overflow the dtype: the step raises and leaves the weights, the base
    state (momentum), xi and the step counter as they were, at step 0 and later."""
    model = type(problem)(dtype=dtype).model()
    opt = AntiPGD(model.parameters(), SGD, sigma=0.1, lr=0.1, momentum=0.9)
    closure = type(problem)(dtype=dtype).closure(model, opt)
    for steps in range(2):
        for group in opt.param_groups:
            group["sigma"] = sigma
        before = _snapshot(model, opt)
        with pytest.raises(FloatingPointError, match=f"non-finite noise at step {steps}"):
            opt.step(closure)
        after = _snapshot(model, opt)
        assert problem.same(after[0], before[0]) and after[1] == before[1]
        assert opt.num_steps == steps
        for group in opt.param_groups:
            group["sigma"] = 0.1
        opt.step(closure)


def test_check_finite_false_lets_the_caller_own_the_check(problem):
    model = problem.model()
    opt = AntiPGD(model.parameters(), SGD, sigma=1e308, lr=0.1, check_finite=False)
    opt.step(lambda: problem.closure(model, opt)() * math.nan)  # neither loss nor noise checked
    assert not all(bool(torch.isfinite(p).all()) for p in model.parameters())
    with pytest.raises(ValueError, match="check_finite"):
        AntiPGD(model.parameters(), SGD, sigma=0.1, lr=0.1, check_finite="yes")
