"""What PerturbedOptimizer and AntiPGD share: a base optimizer built on the same param groups,
per-group noise levels, a step counter that keys the noise, and checkpointing of both."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch.optim import Optimizer

from noisereg._validate import check_choice, check_int, check_nonnegative
from noisereg.optim._noise import NoiseStream

NoiseSync = Literal["shared", "per_rank"]
Closure = Callable[[], torch.Tensor]


class NoiseWrapper(Optimizer):
    """An optimizer whose ``param_groups`` (and ``state``) are those of ``base``.

    ``base(self.param_groups, **base_kwargs)`` is built on the wrapper's own group dicts, so an
    LR scheduler attached to either object, or an edit of ``group["lr"]`` / ``group["sigma"]``,
    is seen by both. Each group carries ``"sigma"`` (default: the ``sigma`` argument).

    ``check_finite`` is opt-in where it would cost a host sync: ``None`` checks the closure's
    loss only on the CPU (a read of host memory, no sync), ``True`` everywhere (one sync per step
    on an accelerator), ``False`` never.
    """

    def __init__(self, params: Iterable[Any], base: type[Optimizer], *, sigma: float, seed: int,
                 noise_sync: NoiseSync, check_finite: bool | None,
                 base_kwargs: dict[str, Any]) -> None:
        if not (isinstance(base, type) and issubclass(base, Optimizer)):
            raise TypeError("base must be a torch.optim.Optimizer subclass such as "
                            f"torch.optim.SGD (the class, not an instance); got {base!r}")
        check_nonnegative("sigma", sigma)
        check_int("seed", seed, low=0)
        check_choice("noise_sync", noise_sync, ("shared", "per_rank"))
        self.check_finite = check_choice("check_finite", check_finite, (None, True, False))
        self._stream = NoiseStream(seed, per_rank=noise_sync == "per_rank")
        self._steps = 0
        super().__init__(params, {"sigma": float(sigma)})
        self.base = base(self.param_groups, **base_kwargs)
        self.defaults.update(self.base.defaults)
        self._link()

    # ------------------------------------------------------------------ groups and parameters

    def _link(self) -> None:
        self.param_groups = self.base.param_groups
        self.state = self.base.state
        self._invalidate()

    def _invalidate(self) -> None:
        """Forget what was derived from the param groups (they changed)."""
        self._flat: list[tuple[int, torch.Tensor, dict[str, Any]]] | None = None

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        param_group["sigma"] = check_nonnegative("sigma", param_group.get("sigma",
                                                                    self.defaults["sigma"]))
        if "base" in self.__dict__:
            self.base.add_param_group(param_group)
        else:  # during Optimizer.__init__, before the base exists
            super().add_param_group(param_group)
        try:
            for p in param_group["params"]:
                if not p.is_floating_point():
                    raise TypeError(f"parameters must be floating point; got dtype {p.dtype}")
                if p.layout != torch.strided:
                    raise TypeError("parameters must be dense (strided) tensors; got layout "
                                    f"{p.layout} for a parameter of shape {tuple(p.shape)}")
        except (TypeError, ValueError):
            self.param_groups.pop()
            raise
        self._invalidate()

    def flat_params(self) -> list[tuple[int, torch.Tensor, dict[str, Any]]]:
        """(index, parameter, its group) over all groups; the index keys the parameter's noise."""
        if self._flat is None:
            pairs = [(p, g) for g in self.param_groups for p in g["params"]]
            self._flat = [(i, p, g) for i, (p, g) in enumerate(pairs)]
        return self._flat

    def sigmas(self) -> list[float]:
        """The current sigma of every parameter (validated: a schedule may have changed it)."""
        for k, group in enumerate(self.param_groups):
            check_nonnegative(f"param_groups[{k}]['sigma']", group["sigma"])
        return [float(g["sigma"]) for _, _, g in self.flat_params()]

    # ------------------------------------------------------------------ steps

    @property
    def num_steps(self) -> int:
        """Completed steps; step n draws the noise keyed by n."""
        return self._steps

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def _checks(self, tensor: torch.Tensor) -> bool:
        """Whether finiteness is checked for ``tensor`` (see ``check_finite``)."""
        return tensor.device.type == "cpu" if self.check_finite is None else self.check_finite

    def _call_closure(self, closure: Closure) -> torch.Tensor:
        with torch.enable_grad():
            loss = closure()
        if loss is None:
            raise TypeError(f"{type(self).__name__}: the closure must return the loss")
        value = loss.detach() if isinstance(loss, torch.Tensor) else torch.as_tensor(loss)
        if self._checks(value) and not all_finite([value]):
            raise FloatingPointError(
                f"{type(self).__name__}: non-finite loss {value.tolist()} at step "
                f"{self._steps}; the weights are as before the step, which was not taken")
        return loss

    def _check_grads(self) -> None:
        if all(p.grad is None for _, p, _ in self.flat_params()):
            raise RuntimeError(f"{type(self).__name__}: no parameter has a gradient; the closure "
                               "(or the code before step()) must call loss.backward()")

    # ------------------------------------------------------------------ copies and checkpoints

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the hooks (as torch.optim does), so that ``copy.deepcopy`` and
        ``pickle`` give an optimizer with the same future: the base optimizer, noise stream,
        step counter and noise state come along; deep-copying the model together with the
        optimizer (``copy.deepcopy((model, opt))``) keeps them attached to the copied model."""
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_hooks")}


    def _noise_state(self) -> dict[str, Any]:
        return {}

    def _load_noise_state(self, noise: dict[str, Any]) -> None:
        del noise

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state dict plus ``"noise"``: seed, step counter, stream mode."""
        state = self.base.state_dict()
        state["noise"] = {"seed": self._stream.seed, "step": self._steps,
                          "noise_sync": "per_rank" if self._stream.per_rank else "shared",
                          **self._noise_state()}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not isinstance(state_dict, dict) or "noise" not in state_dict:
            raise ValueError(f"state_dict is not a {type(self).__name__} state dict (it has no "
                             "'noise' entry; a base optimizer's state dict lacks the noise state)")
        state = dict(state_dict)
        noise = state.pop("noise")
        seed = check_int("state_dict['noise']['seed']", noise["seed"], low=0)
        steps = check_int("state_dict['noise']['step']", noise["step"], low=0)
        sync = check_choice("state_dict['noise']['noise_sync']", noise["noise_sync"],
                            ("shared", "per_rank"))
        self.base.load_state_dict(state)
        self._link()
        self._stream = NoiseStream(seed, per_rank=sync == "per_rank")
        self._steps = steps
        self._load_noise_state(noise)



def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every entry of every tensor is finite (a host sync per tensor off the CPU)."""
    return all(bool(torch.isfinite(t).all()) for t in tensors)
