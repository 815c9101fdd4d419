"""The README's recipes, run as written: torch.amp.GradScaler in a plain loop, HuggingFace's
Trainer (tiny GPT-2 built from a config) and PyTorch Lightning (the `integrations` extra).

The oracle in each case: every forward pass of step n (and the weights the loop sees right
before it calls step()) are w_n + noise_n, the noise of a twin optimizer on zero weights, and
w_{n+1} is the base optimizer's step from w_n with the gradients the loop accumulated (torch's
own optimizer on a copy of the weights)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import noisereg
from noisereg.optim import PerturbedOptimizer

README = Path(__file__).resolve().parents[2] / "README.md"


def _recipe(name: str) -> str:
    blocks = re.findall(r"```python\n# recipe: ([\w-]+)\n(.*?)```", README.read_text(), re.S)
    return dict(blocks)[name]


def _noise(params: list[torch.Tensor], step: int, **kwargs) -> list[torch.Tensor]:
    zeros = [nn.Parameter(torch.zeros_like(p)) for p in params]
    with PerturbedOptimizer(zeros, torch.optim.SGD, lr=0.0, **kwargs).perturbed(step):
        return [z.detach().clone() for z in zeros]


def _values(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


class Recorder:
    """The step counter and the weights at every forward pass, and (weights, gradients, lr)
    right before every step."""

    def __init__(self, model: nn.Module, opt: PerturbedOptimizer) -> None:
        self.params = [p for g in opt.param_groups for p in g["params"]]
        self.opt = opt
        self.forwards: list[tuple[int, list[torch.Tensor]]] = []
        self.steps: list[tuple[list[torch.Tensor], list[torch.Tensor], float]] = []
        model.register_forward_pre_hook(lambda m, args, kwargs: self.forward(), with_kwargs=True)

    def forward(self) -> None:
        self.forwards.append((self.opt.num_steps, _values(self.params)))

    def before_step(self) -> None:
        grads = [p.grad.detach().clone() for p in self.params]
        self.steps.append((_values(self.params), grads, self.opt.param_groups[0]["lr"]))


def _check(rec: Recorder, start: list[torch.Tensor], end: list[torch.Tensor], base: type,
           noise: dict, **base_kwargs) -> None:
    """Replays the recorded steps with torch's ``base`` on copies of the weights."""
    w = [x.clone().requires_grad_() for x in start]
    ref = base(w, **base_kwargs)
    assert rec.steps and {n for n, _ in rec.forwards} == set(range(len(rec.steps)))
    for n, (at_step, grads, lr) in enumerate(rec.steps):
        expected = [x.detach() + e for x, e in zip(w, _noise(w, n, **noise))]
        assert all(_same(f, expected) for k, f in rec.forwards if k == n)
        assert _same(at_step, expected)  # step() itself restores w before the base step
        for p, g in zip(w, grads):
            p.grad = g
        ref.param_groups[0]["lr"] = lr
        ref.step()
    assert _same(_values(w), end)


def test_grad_scaler_recipe_restores_and_skips_like_plain_torch():
    """fp16 autocast on the CPU with a GradScaler; an inf batch makes the scaler skip a step:
    the weights are w again and the next batch is trained with the same step's noise."""
    gen = torch.Generator().manual_seed(0)
    model = noisereg.models.MLP(6, [8], 2, seed=1)
    batches = [(torch.randn(4, 6, generator=gen), torch.randn(4, 2, generator=gen))
               for _ in range(4)]
    batches[1][0][0, 0] = torch.inf  # inf gradients: the scaler skips this step
    noise = {"sigma": 0.1, "seed": 3}
    opt = noisereg.PerturbedOptimizer(model.parameters(), torch.optim.SGD, lr=0.1, **noise)
    start = _values(model.parameters())
    rec = Recorder(model, opt)
    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # no fp16 overflow at the
        return 1e-3 * nn.functional.mse_loss(out, y)                  # scaler's initial scale
    taken: list[bool] = []
    step = opt.step

    def recording_step() -> None:
        rec.before_step()
        taken.append(True)
        step()

    opt.step = recording_step  # the scaler calls opt.step() only when it takes the step
    exec(_recipe("grad-scaler"), {"torch": torch, "opt": opt, "model": model,
                                  "loader": batches, "loss_fn": loss_fn, "device": "cpu"})
    assert len(taken) == 3 and opt.num_steps == 3
    assert [n for n, _ in rec.forwards] == [0, 1, 1, 2]  # batch 2 retried step 1's noise
    _check(rec, start, _values(model.parameters()), torch.optim.SGD, noise, lr=0.1)


def _tiny_gpt2():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=32, n_positions=8, n_embd=16, n_layer=1,
                                     n_head=2, bos_token_id=0, eos_token_id=0)
    with torch.random.fork_rng():  # HF initialises from the global RNG: leave it as it was
        torch.manual_seed(0)
        return transformers, transformers.GPT2LMHeadModel(config)


def test_hf_trainer_recipe_with_gradient_accumulation(tmp_path):
    transformers, model = _tiny_gpt2()
    ids = torch.randint(0, 32, (16, 8), generator=torch.Generator().manual_seed(1))
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=2,
        max_steps=3, report_to=[], use_cpu=True, save_strategy="no", logging_strategy="no",
        disable_tqdm=True, max_grad_norm=0.0, seed=0)
    namespace = {"torch": torch, "noisereg": noisereg, "model": model, "args": args,
                 "train_dataset": [{"input_ids": r, "labels": r} for r in ids]}
    exec(_recipe("hf-trainer"), namespace)
    trainer, opt = namespace["trainer"], namespace["opt"]
    start = _values(opt.param_groups[0]["params"])
    rec = Recorder(model, opt)

    class Record(transformers.TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            rec.before_step()

    trainer.add_callback(Record())
    with torch.random.fork_rng():
        trainer.train()
    assert opt.num_steps == 3 and len(rec.forwards) == 6  # two micro-batches per step
    _check(rec, start, _values(rec.params), torch.optim.AdamW, {"sigma": 1e-3, "seed": 0},
           lr=5e-5)


class _Regression:
    """A LightningModule factory (lightning is imported only when the test runs)."""

    @staticmethod
    def build(L, opt_kwargs: dict):
        class Module(L.LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.net = noisereg.models.MLP(4, [8], 1, seed=2)

            def training_step(self, batch, batch_idx):
                x, y = batch
                return nn.functional.mse_loss(self.net(x), y)

            def configure_optimizers(self):
                return noisereg.PerturbedOptimizer(self.parameters(), torch.optim.SGD,
                                                   **opt_kwargs)

        return Module()


def _fit(L, module, callbacks: list, accumulate: int) -> None:
    gen = torch.Generator().manual_seed(3)
    data = torch.utils.data.TensorDataset(torch.randn(24, 4, generator=gen),
                                          torch.randn(24, 1, generator=gen))
    trainer = L.Trainer(max_steps=3, accumulate_grad_batches=accumulate, accelerator="cpu",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=callbacks)
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4))


def test_lightning_recipe_with_gradient_accumulation():
    L = pytest.importorskip("lightning")
    namespace: dict = {}
    exec(_recipe("lightning"), namespace)
    noise = {"sigma": 0.1, "seed": 4}
    module = _Regression.build(L, {"lr": 0.1, "momentum": 0.9, **noise})
    start = _values(module.parameters())
    holder: dict = {}

    class Record(L.Callback):
        def on_fit_start(self, trainer, pl_module):
            holder["rec"] = Recorder(pl_module.net, trainer.optimizers[0])

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            holder["rec"].before_step()

    _fit(L, module, [Record(), namespace["PerturbBeforeStep"]()], accumulate=2)
    assert len(holder["rec"].forwards) == 6  # two micro-batches per step
    _check(holder["rec"], start, _values(module.parameters()), torch.optim.SGD, noise,
           lr=0.1, momentum=0.9)


def test_lightning_accumulation_without_the_recipe_warns():
    L = pytest.importorskip("lightning")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="PerturbedOptimizer")
        _fit(L, _Regression.build(L, {"lr": 0.1, "sigma": 0.1}), [], accumulate=1)
    with pytest.warns(UserWarning, match="accumulate_grad_batches"):
        _fit(L, _Regression.build(L, {"lr": 0.1, "sigma": 0.1}), [], accumulate=2)
