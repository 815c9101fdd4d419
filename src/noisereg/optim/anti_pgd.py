r"""Anti-PGD: anti-correlated perturbations (Orvieto, Kersting, Proske, Bach, Lucchi, ICML 2022).

    w_{n+1} = base_step(w_n) + (xi_{n+1} - xi_n),        xi_n ~ N(0, sigma^2 I) i.i.d.

The increments of the injected noise are anti-correlated. With z_n = w_n - xi_n the plain-SGD
case is exactly PGD on z: z_{n+1} = z_n - lr * grad L(z_n + xi_n). The noise is added after the
base step: it is not scaled by the learning rate and not filtered by momentum or Adam.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from noisereg.optim._wrapper import Closure, NoiseWrapper, all_finite


class AntiPGD(NoiseWrapper):
    """``AntiPGD(params, torch.optim.SGD, sigma=0.01, lr=0.1)``; ``step(closure=None)``.

    sigma (>= 0, per group in ``group["sigma"]``, read at every step) is the std of xi_n. xi_n is
    drawn from the stream keyed by (seed, n, parameter index), the same stream as
    :class:`PerturbedOptimizer`'s global noise of step n, and never from the rank: the noise is
    added after DDP's gradient all-reduce, so every replica must add the same numbers. xi_0 is
    drawn at the first step; the current xi is kept in ``state_dict()["noise"]["xi"]``. A group
    with sigma = 0 holds xi = 0 (switching noise off subtracts the last xi once, returning to
    z); with sigma = 0 everywhere from the start every step is exactly the base step.

    ``step`` takes an optional closure (zero_grad, forward, backward, returns the loss) or uses
    gradients computed before the call, so it works in any training loop (HF ``Trainer``,
    ``GradScaler``, gradient accumulation). Parameters with ``requires_grad=False`` are skipped
    (their weights and xi are left as they are). ``check_finite`` (``None``: where no host sync
    is needed, i.e. on the CPU; ``True``: always; ``False``: never) refuses a non-finite closure
    loss or noise: every xi_{n+1} is drawn and checked before the base step, so a refused step
    leaves the weights and the state as they were. ``copy.deepcopy`` and ``pickle`` give an
    optimizer with the same future.

    With plain SGD, z_n = w_n - xi_n takes gradient steps: on a linear loss (gradient 1
    everywhere) z moves by exactly -lr per step, whatever the noise:

    >>> import torch
    >>> from noisereg.optim import AntiPGD
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> opt = AntiPGD([w], torch.optim.SGD, sigma=0.01, lr=0.1)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = w.sum()
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> z1 = w.detach() - opt.xi(w)
    >>> _ = opt.step(closure)
    >>> torch.allclose(w.detach() - opt.xi(w) - z1, torch.full((2,), -0.1))
    True
    """

    def __init__(self, params: Iterable[Any], base: type[Optimizer], *, sigma: float,
                 seed: int = 0, check_finite: bool | None = None, **base_kwargs: Any) -> None:
        self._xi: dict[int, torch.Tensor] = {}
        super().__init__(params, base, sigma=sigma, seed=seed, noise_sync="shared",
                         check_finite=check_finite, base_kwargs=base_kwargs)

    def xi(self, param: torch.Tensor) -> torch.Tensor:
        """The current xi_n of ``param`` (zeros before the first noisy step)."""
        for i, p, _ in self.flat_params():
            if p is param:
                return self._xi[i] if i in self._xi else torch.zeros_like(p)
        raise ValueError("param is not a parameter of this optimizer")

    def _draw(self, p: torch.Tensor, index: int, std: float, step: int) -> torch.Tensor:
        out = torch.empty(p.shape, dtype=p.dtype, device=p.device)
        self._stream.fill_([(out, index, std)], step)
        return out

    def _next_xi(self, n: int) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        """(xi_n, xi_{n+1}) of every trainable parameter with noise: xi_0 is drawn at step 0,
        a parameter whose sigma is 0 gets no xi_{n+1} (its xi returns to 0)."""
        sigmas = self.sigmas()
        old: dict[int, torch.Tensor] = {}
        new: dict[int, torch.Tensor] = {}
        for i, p, _ in self.flat_params():
            if not p.requires_grad:
                continue
            xi = self._xi.get(i)
            if xi is None and n == 0 and sigmas[i] > 0:
                xi = self._draw(p, i, sigmas[i], 0)
            if xi is not None:
                old[i] = xi
            if sigmas[i] > 0:
                new[i] = self._draw(p, i, sigmas[i], n + 1)
        return old, new

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor | None:  # type: ignore[override]
        loss = None if closure is None else self._call_closure(closure)
        self._check_grads()
        n = self._steps
        old, new = self._next_xi(n)
        drawn = [*new.values(), *(old[i] for i in old if n == 0)]
        if drawn and self._checks(drawn[0]) and not all_finite(drawn):
            raise FloatingPointError(
                f"AntiPGD: non-finite noise at step {n} (sigma too large for "
                f"{drawn[0].dtype}); the weights are as before the step, which was not taken")
        self.base.step()
        flat = self.flat_params()
        for i, p, _ in flat:
            if i in new:
                p.add_(new[i] if i not in old else new[i] - old[i])
            elif i in old:  # noise switched off: xi_{n+1} = 0
                p.sub_(old[i])
        frozen = {i: xi for i, xi in self._xi.items() if not flat[i][1].requires_grad}
        self._xi = {**frozen, **new}
        self._steps += 1
        return loss

    def _noise_state(self) -> dict[str, Any]:
        return {"xi": dict(self._xi)}

    def _load_noise_state(self, noise: dict[str, Any]) -> None:
        flat = self.flat_params()
        xi = noise.get("xi", {})
        if not isinstance(xi, dict) or any(not isinstance(i, int) or not 0 <= i < len(flat)
                                           for i in xi):
            raise ValueError("state_dict['noise']['xi'] must map parameter indices to tensors")
        self._xi = {}
        for i, value in xi.items():
            p = flat[i][1]
            if tuple(value.shape) != tuple(p.shape):
                raise ValueError(f"state_dict['noise']['xi'][{i}] has shape "
                                 f"{tuple(value.shape)}, the parameter {tuple(p.shape)}")
            self._xi[i] = value.to(dtype=p.dtype, device=p.device, copy=True)
