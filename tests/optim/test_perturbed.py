"""PerturbedOptimizer against plain reference loops, the normal distribution and the torch.optim
contract (schedulers, param groups, checkpoints, bad input)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from torch import nn

import noisereg.optim._noise as noise_module
from noisereg.optim import PerturbedOptimizer, sigma_from_official

SGD, ADAM = torch.optim.SGD, torch.optim.Adam
BASES = [(SGD, {"lr": 0.05}),
         (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
         (ADAM, {"lr": 1e-2})]


def _noise(opt: PerturbedOptimizer, step: int | None = None) -> list[torch.Tensor]:
    """What the optimizer adds to each parameter at ``step`` (zeros where nothing is added)."""
    params = [p for _, p, _ in opt.flat_params()]
    before = [p.detach().clone() for p in params]
    with opt.perturbed(step):
        return [p.detach() - b for p, b in zip(params, before)]


def _big(sizes: tuple[int, ...] = (40000,), dtype: torch.dtype = torch.float64) -> nn.Module:
    """A module holding tensors of the given sizes (values 1, 2, ...: noise is visible)."""
    module = nn.Module()
    for k, n in enumerate(sizes):
        module.register_parameter(f"t{k}", nn.Parameter(torch.full((n,), k + 1.0, dtype=dtype)))
    return module


# ----------------------------------------------------------------------------- the algorithm


@pytest.mark.parametrize(("base", "kw"), BASES)
@pytest.mark.parametrize("mode", ["global", "layerwise"])
def test_gradient_at_the_perturbed_point_step_from_the_restored_weights(problem, base, kw, mode):
    """A plain loop that takes the gradient at the weights the closure saw, puts the original
    weights back and steps with the base optimizer reproduces the trajectory bitwise."""
    a, b = problem.model(), problem.model()
    opt = PerturbedOptimizer(a.parameters(), base, sigma=0.1, mode=mode, **kw)
    ref = base(b.parameters(), **kw)
    seen: list[list[torch.Tensor]] = []

    def closure() -> torch.Tensor:
        seen.append(problem.params(a))
        return problem.closure(a, opt)()

    for _ in range(6):
        seen.clear()
        unperturbed = problem.params(b)
        opt.step(closure)
        with torch.no_grad():
            for p, q in zip(b.parameters(), seen[0]):
                p.copy_(q)
        problem.closure(b, ref)()
        with torch.no_grad():
            for p, q in zip(b.parameters(), unperturbed):
                p.copy_(q)
        ref.step()
        assert len(seen) == 1 and not problem.same(seen[0], unperturbed)
        assert problem.same(problem.params(a), problem.params(b))


@pytest.mark.parametrize(("base", "kw"), BASES)
@pytest.mark.parametrize("mode", ["global", "layerwise"])
def test_sigma_zero_is_exactly_the_base_step(problem, base, kw, mode):
    a, b = problem.model(), problem.model()
    opt = PerturbedOptimizer(a.parameters(), base, sigma=0.0, mode=mode, **kw)
    ref = base(b.parameters(), **kw)
    for _ in range(5):
        la = opt.step(problem.closure(a, opt))
        lb = problem.closure(b, ref)()
        ref.step()
        assert torch.equal(la, lb)
    assert problem.same(problem.params(a), problem.params(b))


def test_step_returns_the_loss_at_the_perturbed_point(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.5, lr=0.0)
    unperturbed = float(problem.closure(model, opt)().detach())
    with opt.perturbed(), torch.no_grad():
        perturbed = float((model(problem.x) - problem.y).pow(2).mean())
    assert float(opt.step(problem.closure(model, opt)).detach()) == perturbed != unperturbed


# ----------------------------------------------------------------------------- restore


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 70000), min_size=1, max_size=4),
       sigma=st.floats(1e-8, 1e3), mode=st.sampled_from(["global", "layerwise"]),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
       step=st.integers(0, 10**6))
def test_restore_is_bitwise_exact(sizes, sigma, mode, dtype, step):
    module = _big(tuple(sizes), dtype)
    gen = torch.Generator().manual_seed(len(sizes))
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 10.0 ** torch.randint(-20, 20, (1,),
                                                                                generator=gen))
    before = [p.detach().clone() for p in module.parameters()]
    opt = PerturbedOptimizer(module.parameters(), SGD, sigma=sigma, mode=mode, lr=0.1)
    with opt.perturbed(step) as plan:
        assert len(plan) == (len(sizes) if mode == "global" else 1)
    assert all(torch.equal(p, b) for p, b in zip(module.parameters(), before))


def test_restore_happens_when_the_closure_raises(problem):
    model = problem.model()
    before = problem.params(model)
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=1.0, lr=0.1)

    def closure() -> torch.Tensor:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        opt.step(closure)
    assert problem.same(problem.params(model), before) and opt.num_steps == 0


def test_an_interruption_halfway_through_the_draws_restores_exactly(monkeypatch):
    """The backup buffers hold stale values from an earlier step: restoring after a failure in
    the middle of the draws must use fresh backups of every tensor."""
    module = _big((100000, 70000))
    before = [p.detach().clone() for p in module.parameters()]
    opt = PerturbedOptimizer(module.parameters(), SGD, sigma=1.0, lr=0.1)
    with opt.perturbed(0):
        pass  # the backup buffers now hold step 0's weights; make them stale:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    moved = [p.detach().clone() for p in module.parameters()]
    calls = []
    real = noise_module._generator

    def failing(device: torch.device) -> torch.Generator:  # the first tensor is drawn already
        calls.append(device)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(device)

    monkeypatch.setattr(noise_module, "_generator", failing)
    with pytest.raises(KeyboardInterrupt), opt.perturbed(1):
        pass
    assert all(torch.equal(p, m) for p, m in zip(module.parameters(), moved))
    assert not any(torch.equal(p, b) for p, b in zip(module.parameters(), before))


def test_non_contiguous_parameters_are_perturbed_and_restored():
    weight = nn.Parameter(torch.arange(12.0, dtype=torch.float64).reshape(3, 4).t())
    assert not weight.is_contiguous()
    before = weight.detach().clone()
    opt = PerturbedOptimizer([weight], SGD, sigma=0.1, lr=0.1)
    contiguous = nn.Parameter(before.contiguous())
    ref = PerturbedOptimizer([contiguous], SGD, sigma=0.1, lr=0.1)
    # same stream: entry k of the logical (row-major) order gets the same draw
    torch.testing.assert_close(_noise(opt)[0], _noise(ref)[0], rtol=0, atol=1e-12)
    assert torch.equal(weight.detach(), before) and weight.stride() == (1, 4)


# ----------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("sigma", [0.03, 2.0])
def test_global_noise_is_iid_normal_with_std_sigma(sigma):
    module = _big((50000, 70001))
    noise = _noise(PerturbedOptimizer(module.parameters(), SGD, sigma=sigma, seed=3, lr=0.1))
    z = torch.cat(noise) / sigma
    assert stats.kstest(z.numpy(), "norm").pvalue > 1e-3
    assert abs(float(z.std()) - 1) < 0.01 and abs(float(z.mean())) < 0.01
    # different tensors (and chunks) get different draws: no correlation between them
    corr = torch.corrcoef(torch.stack([noise[0], noise[1][:50000]]))[0, 1]
    assert abs(float(corr)) < 0.02


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sigma=st.floats(1e-6, 1e3), sizes=st.lists(st.integers(100, 40000), min_size=1,
                                                   max_size=3),
       mode=st.sampled_from(["global", "layerwise"]), seed=st.integers(0, 2**31),
       step=st.integers(0, 10**9))
def test_noise_statistics_match_sigma(sigma, sizes, mode, seed, step):
    """Global: every entry N(0, sigma^2); layer-wise: one tensor N(0, M sigma^2), the rest 0.
    The sample std of n draws is within 6 standard errors (sigma / sqrt(2n)) of its target."""
    module = _big(tuple(sizes))
    opt = PerturbedOptimizer(module.parameters(), SGD, sigma=sigma, mode=mode, seed=seed,
                             lr=0.1)
    noise = _noise(opt, step)
    hit = [e for e in noise if bool(e.any())]
    assert len(hit) == (len(sizes) if mode == "global" else 1)
    z = torch.cat(hit) / (sigma * (1 if mode == "global" else math.sqrt(len(sizes))))
    assert abs(float(z.std()) - 1) < 6 / math.sqrt(2 * z.numel())
    assert abs(float(z.mean())) < 6 / math.sqrt(z.numel())


@pytest.mark.parametrize("layer_choice", ["random", "cyclic"])
def test_layerwise_noise_hits_one_group_with_std_sqrt_m_sigma(layer_choice):
    sizes, sigma, steps = (3000, 4000, 5000, 6000), 0.1, 400
    module = _big(sizes)
    opt = PerturbedOptimizer(module.parameters(), SGD, sigma=sigma, mode="layerwise",
                             layer_choice=layer_choice, seed=5, lr=0.1)
    counts = [0] * len(sizes)
    pooled = []
    for step in range(steps):
        noise = _noise(opt, step)
        hit = [j for j, e in enumerate(noise) if bool(e.any())]
        assert len(hit) == 1
        counts[hit[0]] += 1
        if layer_choice == "cyclic":
            assert hit[0] == step % len(sizes)
        if step < 40:
            pooled.append(noise[hit[0]])
    z = torch.cat(pooled) / (math.sqrt(len(sizes)) * sigma)
    assert abs(float(z.std()) - 1) < 0.01
    assert stats.kstest(z.numpy(), "norm").pvalue > 1e-3
    assert stats.chisquare(counts).pvalue > 1e-3


def test_module_groups_take_the_weight_and_bias_of_one_layer(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.named_parameters(), SGD, sigma=0.1, mode="layerwise",
                             groups="module", lr=0.1)
    assert opt.num_groups == 3 and opt.noise_groups() == [[0, 1], [2, 3], [4, 5]]
    explicit = PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, mode="layerwise", lr=0.1,
                                  groups=[[m.weight, m.bias] for m in model.linears])
    for step in range(12):
        noise = _noise(opt, step)
        hit = [j for j, e in enumerate(noise) if bool(e.any())]
        assert hit in ([0, 1], [2, 3], [4, 5])
        assert all(torch.equal(x, y) for x, y in zip(noise, _noise(explicit, step)))


def test_param_groups_have_their_own_sigma():
    a, b, c = (nn.Parameter(torch.zeros(60000, dtype=torch.float64)) for _ in range(3))
    opt = PerturbedOptimizer([{"params": [a], "sigma": 0.3}, {"params": [b]},
                              {"params": [c], "sigma": 0.0}], SGD, sigma=0.05, lr=0.1)
    na, nb, nc = _noise(opt)
    assert abs(float(na.std()) / 0.3 - 1) < 0.02 and abs(float(nb.std()) / 0.05 - 1) < 0.02
    assert not nc.any()


def test_sigma_can_follow_a_schedule_and_be_switched_off(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.2, lr=0.01)
    seen: list[list[torch.Tensor]] = []

    def closure() -> torch.Tensor:
        seen.append(problem.params(model))
        return problem.closure(model, opt)()

    for step, sigma in enumerate([0.2, 0.0, 0.1, 0.0]):
        for group in opt.param_groups:
            group["sigma"] = sigma
        seen.clear()
        before = problem.params(model)
        opt.step(closure)
        assert problem.same(seen[0], before) == (sigma == 0), step


def test_sigma_from_official_reproduces_the_official_convention():
    """Official code: global std sigma/sqrt(M), layer std sigma on one of M tensors."""
    module, sigma = _big((30000, 30000, 30000, 30000)), 0.2
    theory = sigma_from_official(sigma, 4)
    glob = _noise(PerturbedOptimizer(module.parameters(), SGD, sigma=theory, lr=0.1))
    assert abs(float(torch.cat(glob).std()) / (sigma / 2) - 1) < 0.01
    layer = _noise(PerturbedOptimizer(module.parameters(), SGD, sigma=theory, mode="layerwise",
                                      layer_choice="cyclic", lr=0.1), step=6)
    assert abs(float(layer[2].std()) / sigma - 1) < 0.02 and not layer[0].any()


# ----------------------------------------------------------------------------- noise streams


def test_noise_does_not_depend_on_the_number_of_threads():
    module = _big((100000, 5000))
    opt = PerturbedOptimizer(module.parameters(), SGD, sigma=0.1, lr=0.1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = _noise(opt, 7)
        torch.set_num_threads(max(2, threads))
        parallel = _noise(opt, 7)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(s, p) for s, p in zip(serial, parallel))


def test_shared_noise_ignores_the_rank_and_per_rank_noise_does_not(monkeypatch):
    module = _big((1000, 1000))

    def noise(sync: str, rank: int) -> list[torch.Tensor]:
        monkeypatch.setattr(noise_module, "current_rank", lambda: rank)
        opt = PerturbedOptimizer(module.parameters(), SGD, sigma=0.1, noise_sync=sync, lr=0.1)
        return _noise(opt, 3)

    shared0, shared1 = noise("shared", 0), noise("shared", 1)
    rank0, rank1 = noise("per_rank", 0), noise("per_rank", 1)
    assert all(torch.equal(a, b) for a, b in zip(shared0, shared1))
    assert all(torch.equal(a, b) for a, b in zip(shared0, rank0))  # one process = rank 0
    assert not any(torch.equal(a, b) for a, b in zip(rank0, rank1))


# ----------------------------------------------------------------------------- torch.optim contract


def test_scheduler_on_the_wrapper_or_the_base_sees_the_same_groups(problem):
    def run(where: str, sigma: float) -> list[torch.Tensor]:
        model = problem.model()
        if where == "plain":
            opt = SGD(model.parameters(), lr=0.1, momentum=0.5)
            target = opt
        else:
            opt = PerturbedOptimizer(model.parameters(), SGD, sigma=sigma, lr=0.1, momentum=0.5)
            target = opt if where == "wrapper" else opt.base
        sched = torch.optim.lr_scheduler.StepLR(target, step_size=2, gamma=0.5)
        for _ in range(6):
            closure = problem.closure(model, opt)
            if where == "plain":
                closure()
                opt.step()
            else:
                opt.step(closure)
            sched.step()
        assert opt.param_groups[0]["lr"] == 0.1 * 0.5**3
        return problem.params(model)

    assert problem.same(run("wrapper", 0.0), run("plain", 0.0))
    assert problem.same(run("wrapper", 0.1), run("base", 0.1))


def _train(problem, opt: PerturbedOptimizer, model: nn.Module, steps: int) -> None:
    for _ in range(steps):
        opt.step(problem.closure(model, opt))


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(before=st.integers(0, 5), after=st.integers(1, 4),
       mode=st.sampled_from(["global", "layerwise"]),
       choice=st.sampled_from(["random", "cyclic"]), base=st.sampled_from([0, 1, 2]),
       seed=st.integers(0, 2**31))
def test_state_dict_round_trip_continues_bitwise(problem, before, after, mode, choice, base,
                                                 seed):
    cls, kw = BASES[base]

    def make(model: nn.Module, seed: int) -> PerturbedOptimizer:
        return PerturbedOptimizer(model.parameters(), cls, sigma=0.1, mode=mode,
                                  layer_choice=choice, seed=seed, **kw)

    model = problem.model()
    opt = make(model, seed)
    _train(problem, opt, model, before)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    _train(problem, opt, model, after)

    buffer.seek(0)
    saved = torch.load(buffer)
    resumed = problem.model()
    resumed.load_state_dict(saved["model"])
    fresh = make(resumed, seed + 1)
    fresh.load_state_dict(saved["opt"])  # the saved seed and step win over the constructor's
    _train(problem, fresh, resumed, after)
    assert problem.same(problem.params(model), problem.params(resumed))
    assert fresh.num_steps == before + after


def test_added_param_groups_reach_the_base_and_the_noise(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.0, mode="layerwise", lr=0.1)
    extra = nn.Parameter(torch.zeros(50000, dtype=torch.float64))
    opt.add_param_group({"params": [extra], "sigma": 0.1})
    assert opt.param_groups is opt.base.param_groups and opt.param_groups[1]["lr"] == 0.1
    assert opt.num_groups == 7
    noise = _noise(opt, step=next(s for s in range(100) if opt.plan(s)))
    assert abs(float(noise[-1].std()) / (0.1 * math.sqrt(7)) - 1) < 0.03


def test_state_dict_holds_the_base_state_and_the_noise_state(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, seed=9, lr=0.1, momentum=0.9)
    _train(problem, opt, model, 3)
    state = opt.state_dict()
    assert state["noise"] == {"seed": 9, "step": 3, "noise_sync": "shared"}
    assert "momentum_buffer" in state["state"][0] and state["param_groups"][0]["sigma"] == 0.1
    assert opt.state is opt.base.state


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("sigma", [-0.1, math.nan, math.inf, "0.1", None])
def test_bad_sigma_is_refused(problem, sigma):
    with pytest.raises(ValueError, match="sigma"):
        PerturbedOptimizer(problem.model().parameters(), SGD, sigma=sigma, lr=0.1)


def test_bad_sigma_set_later_is_refused_at_the_step(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, lr=0.1)
    opt.param_groups[0]["sigma"] = -1.0
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['sigma'\]"):
        opt.step(problem.closure(model, opt))
    with pytest.raises(ValueError, match="sigma"):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))], "sigma": math.nan})


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"mode": "all"}, ValueError, "mode"),
    ({"layer_choice": "first"}, ValueError, "layer_choice"),
    ({"groups": "layer"}, ValueError, "groups"),
    ({"groups": 3}, TypeError, "groups"),
    ({"noise_sync": "none"}, ValueError, "noise_sync"),
    ({"seed": -1}, ValueError, "seed"),
    ({"groups": "module"}, ValueError, "named_parameters"),
])
def test_bad_options_are_refused(problem, kwargs, error, match):
    with pytest.raises(error, match=match):
        PerturbedOptimizer(problem.model().parameters(), SGD, sigma=0.1, lr=0.1, **kwargs)


def test_bad_base_and_parameters_are_refused(problem):
    model = problem.model()
    with pytest.raises(TypeError, match="base"):
        PerturbedOptimizer(model.parameters(), SGD(model.parameters(), lr=0.1), sigma=0.1)
    sparse = nn.Parameter(torch.eye(3).to_sparse())
    with pytest.raises(TypeError, match=r"layout torch\.sparse_coo"):
        PerturbedOptimizer([sparse], SGD, sigma=0.1, lr=0.1)
    with pytest.raises(ValueError, match="partition"):
        PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, lr=0.1,
                           groups=[[next(model.parameters())]])
    with pytest.raises(ValueError, match="no 'noise' entry"):
        PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, lr=0.1).load_state_dict(
            SGD(model.parameters(), lr=0.1).state_dict())


def test_step_needs_a_closure_that_computes_gradients(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, lr=0.1)
    with pytest.raises(TypeError, match="closure"):
        opt.step()
    with pytest.raises(RuntimeError, match="backward"):
        opt.step(lambda: (model(problem.x) - problem.y).pow(2).mean())
    with pytest.raises(TypeError, match="return the loss"):
        opt.step(lambda: None)


def test_non_finite_loss_raises_with_the_step_number_and_restores(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, lr=0.1)
    _train(problem, opt, model, 2)
    before = problem.params(model)

    def closure() -> torch.Tensor:
        return problem.closure(model, opt)() * math.inf

    with pytest.raises(FloatingPointError, match="step 2"):
        opt.step(closure)
    assert problem.same(problem.params(model), before) and opt.num_steps == 2
