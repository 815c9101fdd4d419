"""Shared by the PEGR experiments (Meng, Cao, Zou 2023). On the signal-noise model: the problem
configuration, and full-batch gradient descent on ``L_S + lambda * P`` (P = PEGR or GR) for the
:class:`~noisereg.models.PatchCNN`, recording signal learning (gamma), noise memorization (rho)
and errors along the way; the recorded steps of every PEGR experiment.

Two engines give the same iterates: ``autograd`` (``regularized_loss`` with the ghost backend and
``torch.optim.SGD``) and ``closed_form`` (the default): every gradient lies in the span of the
2n training patches, so ``W_t = W_0 + A_t X`` and GD runs on the coefficients ``A_t`` with the
closed-form gradient of :func:`~noisereg.models.patch_cnn.closed_form_objective`, several
``lambda`` values at once. It is ~10x faster and tested against autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch

from noisereg._seeding import derive
from noisereg._validate import (
    check_choice,
    check_fraction,
    check_int,
    check_nonnegative,
    check_positive,
    check_product,
    check_range,
    check_scale,
)
from noisereg.data.signal_noise_model import SignalNoise, signal_noise
from noisereg.diagnostics.signal_noise import signal_noise_coefficients
from noisereg.gradreg import regularized_loss
from noisereg.lab._threads import one_thread
from noisereg.models.patch_cnn import PatchCNN, closed_form_objective, logistic_losses

F64 = torch.float64
ENGINES = ("closed_form", "autograd")
T = TypeVar("T")
CURVES = ("step", "train_loss", "train_error", "test_error", "gamma_max", "rho_max", "rho_min")


@dataclass(frozen=True)
class SignalNoiseConfig:
    """The toy regime of the notes: harmful overfitting for GD since
    ``(sigma_p sqrt(d))^q / n >> ||mu||^q``."""

    n: int = 20
    d: int = 2000
    m: int = 10
    q: float = 3.0
    mu_norm: float = 4.0
    sigma_p: float = 1.0
    sigma0: float = 0.01
    flip_prob: float = 0.0
    n_test: int = 2000
    eta: float = 0.02
    steps: int = 20000
    engine: Literal["closed_form", "autograd"] = "closed_form"

    def __post_init__(self) -> None:
        check_int("n", self.n, low=1, high=10_000)
        check_int("d", self.d, low=2, high=1_000_000)
        check_int("m", self.m, low=1, high=10_000)
        check_int("n_test", self.n_test, low=1, high=1_000_000)
        check_product("(n + n_test) * d", (self.n + self.n_test) * self.d, 5e7,
                      "memory of the two patches of every sample")
        check_product("m * d", self.m * self.d, 1e7, "memory of the filters")
        if check_positive("q", self.q) < 2:
            raise ValueError(f"q must be >= 2, got {self.q}")
        # sigma(z) = max(0, z)^q: beyond q = 10 the activations overflow float64 quickly.
        check_range("q", self.q, 2.0, 10.0)
        check_scale("mu_norm", self.mu_norm, high=1e3)
        check_scale("sigma_p", self.sigma_p, high=1e3)
        check_nonnegative("sigma0", self.sigma0, high=10.0)
        check_fraction("flip_prob", self.flip_prob, open_right=True)
        check_scale("eta", self.eta, high=10.0)
        check_int("steps", self.steps, low=1, high=10**7)
        check_choice("engine", self.engine, ENGINES)


@dataclass(frozen=True)
class Problem:
    train: SignalNoise
    test: SignalNoise
    model: PatchCNN


def make_problem(config: SignalNoiseConfig, seed: int) -> Problem:
    """Training set (label flips with ``flip_prob``), a clean test set and the initial model."""
    c = config
    train = signal_noise(c.n, c.d, c.mu_norm, c.sigma_p, c.flip_prob, seed=seed, dtype=F64)
    test = signal_noise(c.n_test, c.d, c.mu_norm, c.sigma_p, 0.0,
                        seed=derive(seed, "test-data"), dtype=F64)
    return Problem(train, test, PatchCNN(c.d, c.m, c.q, c.sigma0, seed=seed, dtype=F64))


def record_steps(steps: int, records: int) -> list[int]:
    """Step 0 and about ``records - 1`` geometrically spaced steps up to ``steps`` (the dynamics
    are fast early on)."""
    spaced = np.geomspace(1, steps, max(records - 1, 1)).round().astype(int).tolist()
    return sorted({0, *spaced, steps})


def record_and_train(steps: int, at: Iterable[int], record: Callable[[], T],
                     step: Callable[[], object]) -> list[T]:
    """Call ``step`` ``steps`` times and ``record()`` before step ``t`` for every ``t`` in ``at``
    (``t = steps``: after the last step); returns the records in step order."""
    at = set(at)
    records = []
    for t in range(steps + 1):
        if t in at:
            records.append(record())
        if t < steps:
            step()
    return records


def errors(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """0-1 error of ``sign(f)`` against ``y`` along the last dim (``f = 0`` counts as an error);
    NaN for a diverged run (non-finite outputs)."""
    err = (torch.sign(f) != y).to(F64).mean(-1)
    return torch.where(torch.isfinite(f).all(-1), err, torch.nan)


def _patches(data: SignalNoise) -> torch.Tensor:
    return data.x.reshape(-1, data.d)  # [2n, d]: patch (i, p) at row 2i + p


def outputs(pre: torch.Tensor, model: PatchCNN) -> torch.Tensor:
    """``f`` from pre-activations ``[L, 2m, 2n]`` (patch pairs adjacent): ``[L, n]``."""
    act = pre.clamp_min(0).pow(model.q)
    return torch.einsum("k,lkip->li", model.second, act.reshape(*act.shape[:2], -1, 2))


def _train_closed_form(p: Problem, penalty: str, lams: torch.Tensor, eta: float, steps: int,
                       at: set[int]) -> list[torch.Tensor]:
    """GD on the span coefficients ``A [L, 2m, 2n]``; returns them at the steps ``at``."""
    x = _patches(p.train)
    gram = x @ x.T
    s0 = p.model.weight.detach() @ x.T
    coeffs = torch.zeros(len(lams), *s0.shape, dtype=F64)
    shape = (*coeffs.shape[:2], p.train.n, 2)

    def step() -> None:
        _, coef = closed_form_objective((s0 + coeffs @ gram).reshape(shape), p.train.y,
                                        gram.reshape(p.train.n, 2, p.train.n, 2),
                                        p.model.second, p.model.q, lams, penalty)
        coeffs.sub_(eta * coef.reshape(coeffs.shape))

    return record_and_train(steps, at, coeffs.clone, step)


def _train_autograd(p: Problem, penalty: str, lams: torch.Tensor, eta: float, steps: int,
                    at: set[int]) -> list[torch.Tensor]:
    """``regularized_loss`` + ``torch.optim.SGD``, one lambda after the other; the filters are
    expressed as span coefficients (``W - W_0 = A X``, least squares) at the steps ``at``."""
    x = _patches(p.train)
    runs = [torch.stack(_train_autograd_one(p, x, penalty, lam, eta, steps, at))
            for lam in lams.tolist()]
    return list(torch.stack(runs, dim=1))


def _train_autograd_one(p: Problem, x: torch.Tensor, penalty: str, lam: float, eta: float,
                        steps: int, at: set[int]) -> list[torch.Tensor]:
    """One lambda of :func:`_train_autograd`: span coefficients of ``W - W_0`` at ``at``."""
    model = PatchCNN(p.model.d, p.model.m, p.model.q, dtype=F64)
    model.load_state_dict(p.model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=eta)

    def coefficients() -> torch.Tensor:
        change = (model.weight - model.initial).detach()
        return torch.linalg.lstsq(x.T, change.T, driver="gelsd").solution.T

    def step() -> None:
        opt.zero_grad()
        regularized_loss(model, logistic_losses, p.train.x, p.train.y, lam=lam,
                         penalty=penalty, backend="ghost").backward()
        opt.step()

    return record_and_train(steps, at, coefficients, step)


@dataclass(frozen=True)
class Trained:
    """One trajectory per lambda (lists over the recorded steps, keys ``CURVES``): ``step``,
    ``train_loss`` (L_S), ``train_error``, ``test_error`` (clean labels), ``gamma_max``
    (max_{j,r} gamma), ``rho_max`` / ``rho_min`` (max / min_{j,r,i} rho); and the final filters
    ``weights [L, 2m, d]``."""

    runs: list[dict[str, list[float]]]
    weights: torch.Tensor


def train_runs(p: Problem, *, penalty: Literal["pegr", "gr"], lams: Sequence[float], eta: float,
               steps: int, records: int, engine: str) -> Trained:
    """Train one model per ``lambda`` (0 = plain GD) from ``p.model`` by full-batch GD with
    step ``eta``, recording ``records`` evenly spaced steps."""
    check_choice("engine", engine, ENGINES)
    at = record_steps(steps, records)
    lam_t = torch.tensor([float(v) for v in lams], dtype=F64)
    train = _train_closed_form if engine == "closed_form" else _train_autograd
    with one_thread():
        return _evaluate(p, at, train(p, penalty, lam_t, eta, steps, set(at)))


def _evaluate(p: Problem, at: list[int], snapshots: list[torch.Tensor]) -> Trained:
    """Trajectories from the span coefficients recorded at the steps ``at``."""
    x, x_test, w0 = _patches(p.train), _patches(p.test), p.model.weight.detach()
    # f at any W = W_0 + A X from the pre-activations W_0 x' + A (X x'), products computed once
    base = {"train": (w0 @ x.T, x @ x.T), "test": (w0 @ x_test.T, x @ x_test.T)}
    probe = PatchCNN(p.model.d, p.model.m, p.model.q, dtype=F64)
    probe.load_state_dict(p.model.state_dict())
    runs: list[dict[str, list[float]]] = [
        {k: [] for k in CURVES} for _ in range(len(snapshots[0]))]
    for step, coeffs in zip(at, snapshots):
        f = {k: outputs(s0 + coeffs @ cross, p.model) for k, (s0, cross) in base.items()}
        loss = logistic_losses(f["train"], p.train.y).mean(-1)
        train_err, test_err = errors(f["train"], p.train.y), errors(f["test"], p.test.y)
        for i, run in enumerate(runs):
            with torch.no_grad():
                probe.weight.copy_(w0 + coeffs[i] @ x)
            sn = signal_noise_coefficients(probe, p.train.mu, p.train.xi)
            run["step"].append(step)
            run["train_loss"].append(float(loss[i]))
            run["train_error"].append(float(train_err[i]))
            run["test_error"].append(float(test_err[i]))
            run["gamma_max"].append(sn.max_gamma)
            run["rho_max"].append(sn.max_rho)
            run["rho_min"].append(sn.min_rho)
    return Trained(runs, w0 + snapshots[-1] @ x)
