"""PerturbedOptimizer in loops that call step() without a closure: perturb() before the forward
pass, step() restores and steps; gradient accumulation; a plain reference loop as the oracle."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from noisereg.optim import PerturbedOptimizer

SGD = torch.optim.SGD
KW = {"lr": 0.05, "momentum": 0.9}


def _noise(model: nn.Module, step: int, **kwargs) -> list[torch.Tensor]:
    """The noise of ``step``: the perturbed weights of a twin optimizer on zero weights."""
    zeros = [nn.Parameter(torch.zeros_like(p)) for p in model.parameters()]
    with PerturbedOptimizer(zeros, SGD, **kwargs, **KW).perturbed(step):
        return [z.detach().clone() for z in zeros]


def _loss(problem, model: nn.Module, rows: slice = slice(None)) -> torch.Tensor:
    return (model(problem.x[rows]) - problem.y[rows]).pow(2).mean()


@pytest.mark.parametrize("mode", ["global", "layerwise"])
def test_perturb_backward_step_equals_step_with_a_closure(problem, mode):
    a, b = problem.model(), problem.model()
    two_phase = PerturbedOptimizer(a.parameters(), SGD, sigma=0.1, mode=mode, seed=3, **KW)
    closure = PerturbedOptimizer(b.parameters(), SGD, sigma=0.1, mode=mode, seed=3, **KW)
    for _ in range(5):
        two_phase.zero_grad()
        two_phase.perturb()
        _loss(problem, a).backward()
        assert two_phase.step() is None
        closure.step(problem.closure(b, closure))
        assert problem.same(problem.params(a), problem.params(b))
    assert two_phase.num_steps == closure.num_steps == 5


def test_every_micro_batch_until_step_sees_one_perturbation(problem):
    """Accumulation over three micro-batches: each forward runs at w_n + noise_n, and the step
    is SGD's from w_n with the summed gradients (reference: torch SGD on a copy)."""
    model, ref_model = problem.model(), problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.2, seed=1, **KW)
    ref = SGD(ref_model.parameters(), **KW)
    seen: list[list[torch.Tensor]] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(problem.params(m)))
    for n in range(3):
        w = problem.params(model)
        expected = [x + e for x, e in zip(w, _noise(model, n, sigma=0.2, seed=1))]
        seen.clear()
        opt.zero_grad()
        for k in range(3):
            opt.perturb()  # a no-op after the first micro-batch
            _loss(problem, model, slice(5 * k, 5 * k + 5)).backward()
        opt.step()
        assert len(seen) == 3 and all(problem.same(s, expected) for s in seen)

        ref.zero_grad()
        with torch.no_grad():
            for p, e in zip(ref_model.parameters(), expected):
                p.copy_(e)
        for k in range(3):
            _loss(problem, ref_model, slice(5 * k, 5 * k + 5)).backward()
        with torch.no_grad():
            for p, x in zip(ref_model.parameters(), w):
                p.copy_(x)
        ref.step()
        assert problem.same(problem.params(model), problem.params(ref_model))


def test_restore_before_step_keeps_the_perturbed_gradients(problem):
    a, b = problem.model(), problem.model()
    early = PerturbedOptimizer(a.parameters(), SGD, sigma=0.1, **KW)
    closure = PerturbedOptimizer(b.parameters(), SGD, sigma=0.1, **KW)
    early.restore()  # nothing perturbed: a no-op
    for _ in range(3):
        w = problem.params(a)
        early.zero_grad()
        early.perturb()
        _loss(problem, a).backward()
        early.restore()
        assert problem.same(problem.params(a), w)
        early.step()
        closure.step(problem.closure(b, closure))
        assert problem.same(problem.params(a), problem.params(b))


def test_a_closure_adding_to_earlier_gradients_warns(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, **KW)

    def accumulate() -> torch.Tensor:  # Lightning's closure on the last of two micro-batches
        loss = _loss(problem, model, slice(8, 16))
        loss.backward()
        return loss

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(problem.closure(model, opt))  # zero_grad inside the closure: no warning
        _loss(problem, model, slice(0, 8)).backward()  # no gradients kept from zero_grad
        opt.perturb()  # too late for the first micro-batch, but the loop said so
        opt.step(accumulate)
        opt.zero_grad()
        opt.perturb()
        _loss(problem, model, slice(0, 8)).backward()
        opt.step(accumulate)
    opt.zero_grad()
    _loss(problem, model, slice(0, 8)).backward()
    with pytest.warns(UserWarning, match="perturb"):
        opt.step(accumulate)
    assert opt.num_steps == 4


def test_step_without_closure_needs_perturb_and_a_refused_step_disarms(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, **KW)
    _loss(problem, model).backward()
    with pytest.raises(TypeError, match="perturb"):
        opt.step()
    w = problem.params(model)
    opt.perturb()
    assert not problem.same(problem.params(model), w)

    def boom() -> torch.Tensor:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        opt.step(boom)
    assert problem.same(problem.params(model), w) and opt.num_steps == 0
    with pytest.raises(TypeError, match="perturb"):
        opt.step()  # the failed step took the perturbation's gradients with it


def test_perturbed_block_is_refused_while_perturb_holds_the_weights(problem):
    model = problem.model()
    opt = PerturbedOptimizer(model.parameters(), SGD, sigma=0.1, **KW)
    w = problem.params(model)
    opt.perturb()
    held = problem.params(model)
    with pytest.raises(RuntimeError, match="already perturbed"), opt.perturbed(0):
        pass
    assert problem.same(problem.params(model), held)
    opt.restore()
    with opt.perturbed(4), pytest.raises(RuntimeError, match="step 4"):
        opt.perturb()
    assert problem.same(problem.params(model), w)
