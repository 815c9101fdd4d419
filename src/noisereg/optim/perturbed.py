r"""Perturbed gradient descent (PGD): noise injected before the gradient step.

Orvieto, Raj, Kersting, Bach, "Explicit regularization in overparametrized models via noise
injection", AISTATS 2023. With sigma the noise standard deviation (per parameter entry) and
eps_n ~ N(0, I),

    g_n = grad L(w_n + sigma * eps_n),        w_{n+1} = base_step(w_n, g_n):

the gradient is taken at the perturbed point and the base optimizer (SGD, momentum, Adam, weight
decay, ...) steps from the unperturbed weights. g_n is an unbiased gradient of the smoothed loss
R_sigma(w) = E L(w + sigma * eps) ~ L(w) + sigma^2/2 tr(grad^2 L(w)), see
:mod:`noisereg.theory.noise_injection` for its closed forms.

Global noise perturbs every entry with std sigma. Layer-wise noise picks one of the M noise
groups per step (uniformly at random or cyclically) and perturbs only it, with std
sqrt(M) * sigma, so that the expected sigma^2 term equals the global one (theory convention).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch.optim import Optimizer

from noisereg._validate import check_choice, check_int, check_nonnegative
from noisereg.optim._perturbation import Perturbation, module_groups, plan_noise
from noisereg.optim._wrapper import Closure, NoiseSync, NoiseWrapper

Mode = Literal["global", "layerwise"]
LayerChoice = Literal["random", "cyclic"]
Groups = Literal["tensor", "module"] | Sequence[Sequence[torch.Tensor]]


def sigma_from_official(sigma: float, num_groups: int) -> float:
    """The sigma of this library that reproduces the official code's ``sigma``.

    The official code draws global noise with std sigma/sqrt(M) and layer-wise noise with std
    sigma on one of the M = len(list(model.parameters())) tensors, cycling over them. Both are
    this library's convention (global std sigma', layer std sqrt(M) sigma') at
    sigma' = sigma / sqrt(M), with ``groups="tensor"`` and ``layer_choice="cyclic"``.

    >>> from noisereg.optim import sigma_from_official
    >>> sigma_from_official(0.1, num_groups=4)  # 0.1 / sqrt(4)
    0.05
    """
    sigma = check_nonnegative("sigma", sigma)
    return sigma / math.sqrt(check_int("num_groups", num_groups, low=1))


class PerturbedOptimizer(NoiseWrapper):
    """PGD around any torch optimizer: ``PerturbedOptimizer(params, torch.optim.SGD, sigma=0.05,
    lr=0.1, momentum=0.9)``; every ``step(closure)`` is one forward/backward. Loops that call
    ``step()`` without a closure (HF ``Trainer``, ``GradScaler``, gradient accumulation) call
    ``perturb()`` before the forward pass instead (see ``step``).

    Args:
        params: parameters or param-group dicts (a group may set its own ``"sigma"``), or
            ``model.named_parameters()`` (needed for ``groups="module"``).
        base: the optimizer class that takes the step; ``**base_kwargs`` are its arguments.
        sigma: noise std per entry (global) / the sqrt(M)-scaled layer std (layer-wise); >= 0.
            Read from ``group["sigma"]`` at every step: set it to follow a schedule, 0 to switch
            noise off (the step is then exactly the base step).
        mode: ``"global"`` or ``"layerwise"``.
        layer_choice: ``"random"`` (uniform, drawn from the noise stream) or ``"cyclic"``
            (group ``step mod M``, as in the official code).
        groups: the M noise groups of layer-wise noise. ``"tensor"``: every parameter tensor;
            ``"module"``: tensors whose names share the prefix before the last dot (``"0.weight"``
            and ``"0.bias"``), which needs named parameters; or an explicit partition of the
            parameters as a list of lists of tensors. M counts every group, including groups
            whose sigma is 0 (they then receive no noise when chosen), so that the expected
            regularizer equals the global one for any per-group sigma. Parameters with
            ``requires_grad=False`` are skipped (never perturbed, not counted in M), as torch
            optimizers skip them; they keep their index, so freezing a layer does not change
            the noise of the others.
        seed: seeds the noise, drawn from streams keyed by (seed, step, parameter index).
        noise_sync: ``"shared"``: every DDP rank draws the same noise, which reproduces the
            single-process algorithm. ``"per_rank"`` adds the rank to the key: independent noise
            per rank. The perturbation is undone before the step, so replicas stay in sync either
            way, but DDP averages the gradients of the W ranks, which averages W independent
            perturbations: the sigma^2 regularization is unchanged in expectation while the
            gradient variance due to the perturbation is divided by about W.
        check_finite: refuse a closure's non-finite loss (FloatingPointError, weights restored,
            no step). ``None`` (default): checked when the loss is on the CPU, not on an
            accelerator, where the check is a host sync every step; ``True``: always (opt in to
            the sync); ``False``: never.

    ``copy.deepcopy`` and ``pickle`` give an optimizer with the same future.
    Use with ``torch.nn.parallel.DistributedDataParallel``: call the DDP model in the closure.
    Base optimizers that need a closure themselves (LBFGS) are not supported.

    Cost: one forward/backward per step plus drawing the noise (torch's generator, ~3 ns per
    entry on the CPU), one copy of the perturbed tensors into reused buffers and one copy back.

    A linear loss has the same gradient wherever the noise moves the weights, so one step is
    exactly the SGD step from the unperturbed weights:

    >>> import torch
    >>> from noisereg.optim import PerturbedOptimizer
    >>> w = torch.nn.Parameter(torch.zeros(3))
    >>> opt = PerturbedOptimizer([w], torch.optim.SGD, sigma=0.5, lr=0.1)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = w.sum()  # gradient 1 at every point
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> w.tolist()
    [-0.1..., -0.1..., -0.1...]

    Layer-wise noise perturbs one of M groups per step, M = 2 tensors of a Linear layer:

    >>> layer = torch.nn.Linear(3, 1)
    >>> PerturbedOptimizer(layer.parameters(), torch.optim.SGD, sigma=0.1, lr=0.1,
    ...                    mode="layerwise").num_groups
    2
    """

    def __init__(self, params: Iterable[Any], base: type[Optimizer], *, sigma: float,
                 mode: Mode = "global", layer_choice: LayerChoice = "random",
                 groups: Groups = "tensor", seed: int = 0, noise_sync: NoiseSync = "shared",
                 check_finite: bool | None = None, **base_kwargs: Any) -> None:
        self.mode = check_choice("mode", mode, ("global", "layerwise"))
        self.layer_choice = check_choice("layer_choice", layer_choice, ("random", "cyclic"))
        if isinstance(groups, str):
            check_choice("groups", groups, ("tensor", "module"))
        elif not isinstance(groups, Sequence):
            raise TypeError("groups must be 'tensor', 'module' or a list of lists of parameters; "
                            f"got {type(groups).__name__}")
        self._groups_spec = groups
        self._perturbation = Perturbation()
        super().__init__(params, base, sigma=sigma, seed=seed, noise_sync=noise_sync,
                         check_finite=check_finite, base_kwargs=base_kwargs)
        self.noise_groups()  # fail early on a bad partition or missing names

    def _invalidate(self) -> None:
        super()._invalidate()
        self._groups: tuple[tuple[bool, ...], list[list[int]]] | None = None

    def noise_groups(self) -> list[list[int]]:
        """The M noise groups, as lists of parameter indices (see ``groups``), without the
        parameters that do not require grad (frozen now; a group left empty is dropped)."""
        flat = self.flat_params()
        trainable = tuple(p.requires_grad for _, p, _ in flat)
        if self._groups is None or self._groups[0] != trainable:
            groups = _partition(self._groups_spec, self.param_groups, flat)
            self._groups = (trainable, [kept for g in groups
                                        if (kept := [i for i in g if trainable[i]])])
        return self._groups[1]

    @property
    def num_groups(self) -> int:
        """M, the number of noise groups."""
        return len(self.noise_groups())

    def plan(self, step: int) -> list[tuple[int, torch.Tensor, float]]:
        """(index, parameter, noise std) of every tensor perturbed at ``step``."""
        groups = None if self.mode == "global" else self.noise_groups()
        return plan_noise([p for _, p, _ in self.flat_params()], self.sigmas(), groups, step,
                          self._stream, self.layer_choice)

    # ------------------------------------------------------------------ two-phase steps

    def perturb(self) -> None:
        """Move the weights to those of the next step, w + noise, until ``step()`` (or
        ``restore()``) puts w back: call it before the forward pass when the training loop
        calls ``step()`` without a closure (HF ``Trainer``, ``GradScaler``, see the README's
        recipes). The gradients of every micro-batch run before ``step()`` are then taken at the
        perturbed point (gradient accumulation). A no-op while already perturbed."""
        pert = self._perturbation
        if not pert.active:
            pert.apply(self.plan(self._steps), self._stream, self._steps)
        elif pert.step != self._steps:
            raise RuntimeError(f"the weights hold the perturbation of step {pert.step} "
                               f"(inside perturbed()), not of the next step {self._steps}")
        pert.armed = True

    def restore(self) -> None:
        """Put the unperturbed weights back, bitwise (a no-op when they are not perturbed).
        ``step()`` still takes the step with the gradients computed at the perturbed point, so
        this may run between the backward pass and a ``step()`` that a ``GradScaler`` may skip.
        """
        self._perturbation.restore()

    @contextmanager
    def perturbed(self, step: int | None = None) -> Iterator[list[tuple[int, torch.Tensor, float]]]:
        """Within the block the weights are those of step ``step`` (default: the next step),
        w + noise; on exit they are restored bitwise. Yields the plan (index, parameter, std).
        Refused while ``perturb()`` holds the weights perturbed."""
        step = self._steps if step is None else check_int("step", step, low=0)
        plan = self.plan(step)
        self._perturbation.apply(plan, self._stream, step)
        try:
            yield plan
        finally:
            self._perturbation.restore()

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor | None:  # type: ignore[override]
        """With a closure: perturb, ``loss = closure()`` (zero_grad, forward, backward at the
        perturbed point), restore the weights bitwise, then the base step; returns the loss.
        Without a closure, after ``perturb()`` and the backward passes: restore, then the base
        step; returns None.

        A closure that adds to gradients present before ``step()`` (gradient accumulation:
        earlier micro-batches ran at the unperturbed weights) raises a warning; ``perturb()``
        before the first micro-batch avoids it. A refused step (a closure that raises, a
        non-finite loss, no gradient) restores the weights and takes no step."""
        pert = self._perturbation
        if closure is None and not pert.armed:
            raise TypeError(
                "PerturbedOptimizer.step needs a closure, or perturb() before the forward pass: "
                "the gradient must be computed at the perturbed weights, e.g. def closure(): "
                "opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); return loss")
        loss = None
        try:
            if closure is not None:
                earlier = None if pert.armed else self._grads()
                self.perturb()
                loss = self._call_closure(closure)
                if earlier is not None:
                    self._warn_if_accumulated(earlier)
            self._check_grads()
        except BaseException:
            pert.armed = False
            raise
        finally:
            pert.restore()
        self.base.step()
        pert.armed = False
        self._steps += 1
        return loss

    def _grads(self) -> list[torch.Tensor | None]:
        return [p.grad for _, p, _ in self.flat_params()]

    def _warn_if_accumulated(self, earlier: list[torch.Tensor | None]) -> None:
        if any(g is not None and g is now for g, now in zip(earlier, self._grads())):
            warnings.warn(
                "PerturbedOptimizer.step: the closure added to gradients that existed before "
                "step() (gradient accumulation, e.g. Lightning's accumulate_grad_batches > 1), "
                "and those were computed at the unperturbed weights. Call opt.perturb() before "
                "the first micro-batch (see the README's recipes); a closure that zeroes "
                "gradients should use zero_grad(set_to_none=True).", stacklevel=3)


def _partition(spec: Groups, param_groups: list[dict[str, Any]],
               flat: list[tuple[int, torch.Tensor, dict[str, Any]]]) -> list[list[int]]:
    if spec == "tensor":
        return [[i] for i, _, _ in flat]
    if spec == "module":
        if any("param_names" not in g for g in param_groups):
            raise ValueError("groups='module' needs parameter names: pass "
                             "model.named_parameters() (or named param groups), or give groups "
                             "as a list of lists of parameters")
        return module_groups([name for g in param_groups for name in g["param_names"]])
    index = {id(p): i for i, p, _ in flat}
    groups: list[list[int]] = []
    for k, members in enumerate(spec):
        if isinstance(members, torch.Tensor) or not isinstance(members, Iterable):
            raise TypeError(f"groups[{k}] must be a list of parameters")
        ids = [id(p) for p in members]
        if not ids or any(pid not in index for pid in ids):
            raise ValueError(f"groups[{k}] must be a non-empty list of this optimizer's "
                             "parameters")
        groups.append([index[pid] for pid in ids])
    covered = sorted(i for g in groups for i in g)
    if covered != list(range(len(flat))):
        raise ValueError("groups must partition the parameters: every parameter in exactly one "
                         "group")
    return groups
