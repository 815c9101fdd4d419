"""The library training loop: fit is plain minibatch SGD written out by hand, a trainer restored
from its state continues bitwise like the uninterrupted run, accuracies are exact fractions and
bad config values are refused naming the field."""

import copy
import dataclasses
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from noisereg.data.images import load_split
from noisereg.models.mlp import MLP
from noisereg.trainer import FitResult, TrainConfig, Trainer, batch_indices

TINY = TrainConfig(method="gd", steps=8, batch_size=16, widths=(12,), n_train=64, n_test=32,
                   lr=0.2, momentum=0.9, seed=3, device="cpu")


def test_fit_is_minibatch_sgd_with_momentum_step_for_step() -> None:
    result = Trainer(TINY).fit()
    # The same run by hand: the seeded split and MLP, the documented batches, the cross-entropy
    # of the batch and heavy-ball momentum v <- m v + g, w <- w - lr v (v_1 = g_1).
    data = load_split("digits", TINY.n_train, TINY.n_test, seed=TINY.seed)
    model = MLP(data.num_features, TINY.widths, data.num_classes, seed=TINY.seed)
    velocity = [torch.zeros_like(p) for p in model.parameters()]
    losses = []
    for step in range(TINY.steps):
        index = batch_indices(TINY.seed, step, TINY.n_train, TINY.batch_size)
        loss = F.cross_entropy(model(data.x_train[index]), data.y_train[index])
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, v, g in zip(model.parameters(), velocity, grads):
                v.mul_(TINY.momentum).add_(g)
                p.sub_(TINY.lr * v)
        losses.append(float(loss.detach()))
    assert result.steps == TINY.steps and len(result.losses) == TINY.steps
    assert result.losses == pytest.approx(losses, rel=1e-6)
    assert result.final_loss == result.losses[-1]
    trained = Trainer(TINY)
    trained.fit()
    for mine, theirs in zip(trained.module.parameters(), model.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["gd", "anti-pgd", "label-noise", "pegr"])
def test_a_trainer_restored_from_its_state_continues_bitwise(method: str) -> None:
    config = dataclasses.replace(TINY, method=method, steps=6, lam=0.01)
    straight = Trainer(config)
    whole = straight.fit()
    saved: dict = {}

    def killed_after_three(trainer: Trainer) -> None:
        if trainer.steps_done == 3:
            saved.update(copy.deepcopy(trainer.state_dict()))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(config).fit(killed_after_three)
    resumed = Trainer(config)
    resumed.load_state_dict(saved)
    rest = resumed.fit()
    assert rest.losses == whole.losses[3:] and rest.final_loss == whole.final_loss
    for name, value in straight.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[name], value), name


def test_fit_calls_back_after_every_step_and_a_finished_trainer_takes_none() -> None:
    trainer = Trainer(dataclasses.replace(TINY, steps=4))
    seen = []
    result = trainer.fit(lambda t: seen.append((t.steps_done, t.last_loss)))
    assert seen == list(zip(range(1, 5), result.losses))
    again = trainer.fit(lambda t: seen.append(None))
    assert again == FitResult(4, result.final_loss, ()) and len(seen) == 4


def test_fit_raises_on_a_non_finite_loss() -> None:
    # lr = 1e38 sends the float32 weights to inf after the first step: the second loss is nan.
    trainer = Trainer(dataclasses.replace(TINY, lr=1e38, momentum=0.0))
    with pytest.raises(FloatingPointError, match="diverged: the loss is nan after 1 steps"):
        trainer.fit()


def test_evaluate_gives_the_exact_fractions_of_hits() -> None:
    trainer = Trainer(dataclasses.replace(TINY, n_train=300, n_test=97, steps=20))
    trainer.fit()
    found = trainer.evaluate()
    d = trainer.data
    with torch.no_grad():
        for split, x, y in (("train", d.x_train, d.y_train), ("test", d.x_test, d.y_test)):
            hits = sum(int(row.argmax()) == int(t) for row, t in zip(trainer.module(x), y))
            assert found[f"{split}_accuracy"] == float(Fraction(hits, len(y)))


def test_batches_are_distinct_indices_fixed_by_seed_and_step() -> None:
    batch = batch_indices(7, 11, 50, 20)
    assert batch.dtype == torch.long and len(batch) == 20 and len(set(batch.tolist())) == 20
    assert int(batch.min()) >= 0 and int(batch.max()) < 50
    assert torch.equal(batch, batch_indices(7, 11, 50, 20))
    others = [batch_indices(7, 12, 50, 20), batch_indices(8, 11, 50, 20)]
    assert not any(torch.equal(batch, other) for other in others)
    # The trainer's batch of a step does not depend on the steps taken before.
    trainer = Trainer(TINY)
    before = trainer.batch_indices(5)
    trainer.fit()
    assert torch.equal(trainer.batch_indices(5), before)
    assert torch.equal(before, batch_indices(TINY.seed, 5, TINY.n_train, TINY.batch_size))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("method", "adam", "method must be one of"),
    ("dataset", "cifar10", "dataset must be one of"),
    ("n_train", 1797, r"n_train must be in \[1, 1796\]"),
    ("n_test", 0, r"n_test must be in \[1, "),
    ("widths", (8, 0), "widths must be"),
    ("steps", 0, r"steps must be in \[1, 1000000000\]"),
    ("batch_size", 65, r"batch_size must be in \[1, 64\]"),
    ("lr", 0.0, "lr must be in"),
    ("lr", float("nan"), "lr must be a finite number"),
    ("momentum", 1.0, r"momentum must be 0 or in \[.*, 1\)"),
    ("sigma", -0.1, "sigma must be 0 or in"),
    ("lam", 1e39, "lam must be 0 or in"),
    ("flip", 1.5, r"flip must be 0 or in \[.*, 1\]"),
    ("seed", -1, "seed must be"),
    ("device", "tpu", "device must be one of"),
    ("amp", "fp8", "amp must be one of"),
])
def test_a_bad_config_value_is_refused_naming_the_field(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **{field: value})


def test_a_config_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        Trainer(dataclasses.asdict(TINY))  # type: ignore[arg-type]
