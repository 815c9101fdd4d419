"""--device and --amp: the model, data and optimizer state live on the device; bf16 and fp16
autocast really run in the low precision and still train; an --amp the device cannot run is
refused before training. Parametrized over the devices this machine has."""

import copy
import dataclasses

import pytest
import torch
from torch import nn

from noisereg.trainer import TrainConfig, Trainer

DEVICES = ["cpu", *["cuda"] * torch.cuda.is_available()]


def _config(device: str, amp: str = "none", method: str = "pgd-layerwise") -> TrainConfig:
    return TrainConfig(method=method, steps=30, batch_size=32, widths=(16,), n_train=128,
                       n_test=32, lr=0.5, device=device, amp=amp)


@pytest.mark.parametrize("device", DEVICES)
def test_model_data_and_optimizer_state_live_on_the_device(device: str) -> None:
    trainer = Trainer(dataclasses.replace(_config(device, method="gd"), momentum=0.9))
    x, y = trainer.data.x_train, trainer.data.y_train
    # The first loss is the cross-entropy of the seeded initial model on the first batch,
    # computed here on the CPU from the log-softmax's definition.
    index = trainer.batch_indices(0)
    with torch.no_grad():
        logits = copy.deepcopy(trainer.module).cpu()(x.cpu()[index]).double()
    expected = float((torch.logsumexp(logits, 1) - logits[range(len(index)), y.cpu()[index]])
                     .mean())
    assert trainer.step() == pytest.approx(expected, rel=1e-5)
    params = list(trainer.module.parameters())
    buffers = [s["momentum_buffer"] for s in trainer.opt.state_dict()["state"].values()]
    assert len(buffers) == len(params)
    tensors = [*params, *buffers, x, y, trainer.data.x_test, trainer.data.y_test]
    assert {t.device.type for t in tensors} == {device}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("device", DEVICES)
def test_autocast_runs_in_low_precision_and_the_loss_decreases(device: str, amp: str) -> None:
    trainer = Trainer(_config(device, amp))
    seen: set[torch.dtype] = set()
    layer = next(m for m in trainer.module.modules() if isinstance(m, nn.Linear))
    layer.register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    losses = [trainer.step() for _ in range(trainer.config.steps)]
    assert seen == {torch.bfloat16 if amp == "bf16" else torch.float16}
    assert all(map(torch.isfinite, torch.tensor(losses)))
    assert sum(losses[-5:]) < 0.6 * sum(losses[:5]), losses
    # The same run in float32 starts from the same weights: the first losses agree to the
    # low precision's rounding (bf16 keeps 8 bits), but not bitwise.
    reference = Trainer(_config(device)).step()
    assert losses[0] == pytest.approx(reference, rel=2e-2) and losses[0] != reference
    assert ("scaler" in trainer.state_dict()) == (amp == "fp16")


class _I1(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.i1(x)


def test_an_op_without_a_float16_kernel_refuses_the_amp_before_training() -> None:
    half = torch.ones(2, dtype=torch.float16, requires_grad=True)
    with pytest.raises(RuntimeError, match="not implemented for 'Half'"):
        torch.special.i1(half).sum().backward()  # the premise: no CPU float16 backward kernel
    model = nn.Sequential(nn.Linear(64, 10), _I1())
    with pytest.raises(ValueError, match=r"^amp 'fp16' cannot run on cpu .*i1_backward"):
        Trainer(_config("cpu", "fp16"), model=model)
    assert torch.isfinite(torch.tensor(Trainer(_config("cpu"), model=model).step()))


def test_fp16_with_a_penalty_is_refused_naming_the_method() -> None:
    for method in ("pegr", "gr"):
        with pytest.raises(ValueError, match=f"amp 'fp16' does not support method '{method}'"):
            _config("cpu", "fp16", method)
