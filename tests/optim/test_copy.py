"""copy.deepcopy and pickle give a working optimizer with the same future: the copy, stepped
like the original, follows the original's trajectory bitwise."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from noisereg.optim import AntiPGD, PerturbedOptimizer

SGD = torch.optim.SGD
MAKERS = {
    "pgd-global": lambda params: PerturbedOptimizer(params, SGD, sigma=0.1, seed=2, lr=0.05,
                                                    momentum=0.9),
    "pgd-layerwise": lambda params: PerturbedOptimizer(params, torch.optim.Adam, sigma=0.1,
                                                       mode="layerwise", seed=2, lr=0.01),
    "anti-pgd": lambda params: AntiPGD(params, SGD, sigma=0.05, seed=2, lr=0.05, momentum=0.9),
}
COPIES = {"deepcopy": copy.deepcopy, "pickle": lambda obj: pickle.loads(pickle.dumps(obj))}


def _train(problem, model, opt, steps: int) -> None:
    for _ in range(steps):
        opt.step(problem.closure(model, opt))


@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("kind", MAKERS)
def test_a_copy_has_the_same_future(problem, kind, how):
    model = problem.model()
    opt = MAKERS[kind](model.parameters())
    _train(problem, model, opt, 2)
    model2, opt2 = COPIES[how]((model, opt))
    assert [p for g in opt2.param_groups for p in g["params"]] == list(model2.parameters())
    assert opt2.param_groups is opt2.base.param_groups and opt2.state is opt2.base.state
    _train(problem, model, opt, 3)
    _train(problem, model2, opt2, 3)
    assert problem.same(problem.params(model), problem.params(model2))
    assert opt2.num_steps == opt.num_steps == 5
    assert opt2.state_dict()["noise"]["seed"] == 2


@pytest.mark.parametrize("how", COPIES)
def test_a_copy_taken_while_perturbed_restores_its_own_weights(problem, how):
    model = problem.model()
    opt = MAKERS["pgd-global"](model.parameters())
    _train(problem, model, opt, 1)
    w = problem.params(model)
    opt.zero_grad()
    opt.perturb()
    model2, opt2 = COPIES[how]((model, opt))  # parameters are copied without their gradients
    for m in (model, model2):
        (m(problem.x) - problem.y).pow(2).mean().backward()
    opt2.restore()
    assert problem.same(problem.params(model2), w)
    opt.step()
    opt2.step()
    assert problem.same(problem.params(model), problem.params(model2))
