"""What the per-example norms know about a model, validated once and cached.

A :class:`Plan` holds the trainable parameters, their owners, the covered modules and their
rules, the reasons the ghost backend refuses, whether some module couples the examples, and
the backend ``auto`` settled on. It is built once per model configuration and cached: a call
costs one walk over the modules to form the key (identity and type of every module, its
train/eval mode, its own parameters' identities and ``requires_grad``, and the count of
registered ghost rules), instead of re-validating the model. Replacing a module, tying or
freezing a parameter, switching train/eval or registering a ghost rule gives a new plan, while
the usual train/eval alternation reuses the two plans. A cached plan whose modules or
parameters are no longer alive is rebuilt, since CPython may give a new object a dead one's
``id``.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from noisereg.gradreg.ghost import Rule, ghost_rule, registrations, static_problem

_KEPT = 4  # plans kept per model (configurations it alternates between)


class FallbackWarning(UserWarning):
    """``backend='auto'`` did not use the ghost backend for a model (issued once per model
    configuration; :func:`backend_choice` gives the reasons).

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import FallbackWarning, per_example_sq_grad_norms
    >>> class Scale(nn.Module):  # out = x * w: no built-in ghost rule
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = nn.Parameter(torch.ones(2))
    ...     def forward(self, x):
    ...         return x * self.w
    >>> model = nn.Sequential(Scale(), nn.Linear(2, 1))
    >>> def loss(out, t):
    ...     return (out.squeeze(1) - t) ** 2
    >>> x, y = torch.ones(3, 2), torch.zeros(3)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = per_example_sq_grad_norms(model, loss, x, y)
    >>> any(issubclass(w.category, FallbackWarning) for w in caught)
    True
    """


@dataclass(frozen=True)
class BackendChoice:
    """The backend ``auto`` uses for a model and why the faster ones were not used:
    ``refused`` maps each skipped backend to its reason.

    >>> import torch
    >>> from noisereg.gradreg import backend_choice, per_example_sq_grad_norms
    >>> model = torch.nn.Linear(2, 1)
    >>> def loss(out, t):
    ...     return (out.squeeze(1) - t) ** 2
    >>> _ = per_example_sq_grad_norms(model, loss, torch.ones(3, 2), torch.zeros(3))
    >>> backend_choice(model)
    BackendChoice(backend='ghost', refused={})
    """

    backend: str
    refused: dict[str, str] = field(default_factory=dict)


class Plan:
    """Modules are referred to by ``id`` (and covered ones by weak reference): the cache is keyed
    weakly by the model, so a plan must not keep the model alive."""

    def __init__(self, model: nn.Module) -> None:
        self.labels: dict[int, str] = {}  # module id -> "name (Type)"
        self.names: dict[int, str] = {}
        self.owner: dict[int, int] = {}  # parameter id -> module id
        self.param_names: dict[int, str] = {}
        self.parameters: dict[str, nn.Parameter] = {}  # each trainable parameter once
        self.aliases: dict[str, nn.Parameter] = {}  # every (module, attribute) holding one
        self.rules: dict[int, Rule] = {}
        self._covered: list[weakref.ref[nn.Module]] = []
        self.ghost_problems: list[str] = []
        self.uncovered: list[str] = []
        self.coupling: str | None = None
        self.clone: set[int] = set()  # covered modules whose output is changed in place
        self.checked: set[str] = set()  # backends compared with the loop on this plan
        self.refused: dict[str, str] = {}
        self.choice: BackendChoice | None = None
        self._members: list[weakref.ref] = []  # every module and parameter of the key
        for name, m in model.named_modules():
            self._members.append(weakref.ref(m))
            self._members += [weakref.ref(p) for p in m.parameters(recurse=False)]
            label = f"{name or type(model).__name__} ({type(m).__name__})"
            if (self.coupling is None and isinstance(m, _BatchNorm)
                    and (m.training or m.running_mean is None)):
                self.coupling = (f"{label} uses batch statistics, so the loss of one example "
                                 "depends on the others and per-example gradients are undefined; "
                                 "call model.eval() on it or use GroupNorm/LayerNorm")
            own = [(n, p) for n, p in m.named_parameters(recurse=False) if p.requires_grad]
            if own:
                self._add(m, name, label, own)

    def _add(self, m: nn.Module, name: str, label: str,
             own: list[tuple[str, nn.Parameter]]) -> None:
        self.labels[id(m)], self.names[id(m)] = label, name or label.split(" (")[0]
        rule = ghost_rule(m)
        reason = "no ghost rule for this module type" if rule is None else static_problem(m)
        if reason is not None:
            self.uncovered.append(f"{label}: {reason}")
            if rule is not None:
                self.ghost_problems.append(f"{label}: {reason}")
        if rule is not None:
            self.rules[id(m)] = rule
            self._covered.append(weakref.ref(m))
        for n, p in own:
            self.aliases[f"{name}.{n}" if name else n] = p
            if id(p) in self.owner:
                shared = f"{label}: shares a parameter with {self.names[self.owner[id(p)]]}"
                self.uncovered.append(shared)
                self.ghost_problems.append(shared)
                continue
            self.owner[id(p)] = id(m)
            self.param_names[id(p)] = f"{name}.{n}" if name else n
            self.parameters[self.param_names[id(p)]] = p

    def alive(self) -> bool:
        """Whether the objects this plan was built from still exist (then the ids in its key
        are theirs)."""
        return all(r() is not None for r in self._members)

    def covered(self) -> list[nn.Module]:
        """The modules the ghost backend hooks (alive while the model is)."""
        return [m for m in (r() for r in self._covered) if m is not None]

    def outside(self, parameter: Tensor, owner: int) -> str:
        """Why a parameter reached outside its module's calls makes the ghost norms wrong."""
        if owner not in self.rules:
            return f"{self.labels[owner]}: no ghost rule for this module type"
        return (f"{self.param_names[id(parameter)]} gets gradient outside the calls of "
                f"{self.labels[owner]} (e.g. functional weight tying F.linear(h, emb.weight))")

    def check_independent_examples(self) -> None:
        if self.coupling is not None:
            raise ValueError(self.coupling)

    def use(self, backend: str, requested: str, model: nn.Module) -> None:
        """Record the backend a call used; warn once when ``auto`` did not use ghost."""
        if requested != "auto":
            return
        first = self.choice is None or self.choice.backend != backend
        self.choice = BackendChoice(backend, dict(self.refused))
        if first and self.refused:
            why = "; ".join(f"{b} refused: {r}" for b, r in self.refused.items())
            warnings.warn(f"backend='auto' uses {backend!r} for {type(model).__name__} ({why})",
                          FallbackWarning, stacklevel=4)


_PLANS: weakref.WeakKeyDictionary[nn.Module, dict[tuple, Plan]] = weakref.WeakKeyDictionary()


def _key(model: nn.Module) -> tuple:
    return (registrations(), *((id(m), type(m), m.training,
                                *((id(p), p.requires_grad) for p in m.parameters(recurse=False)))
                               for m in model.modules()))


def plan_for(model: nn.Module) -> Plan:
    """The cached plan of ``model`` in its current configuration (built on first use)."""
    plans = _PLANS.setdefault(model, {})
    key = _key(model)
    plan = plans.pop(key, None)
    if plan is None or not plan.alive():
        plan = Plan(model)
        if len(plans) >= _KEPT:
            del plans[next(iter(plans))]
    plans[key] = plan  # most recently used last
    return plan


def uncovered_modules(model: nn.Module) -> list[str]:
    """Modules with trainable parameters that the ghost backend cannot handle, with the reason.

    When one of them gets gradient in a forward pass, ``backend='ghost'`` refuses and ``'auto'``
    falls back to vmap or loop. Empty does not promise that ghost applies: it also refuses a
    parameter used outside its module's forward (functional weight tying), which only the
    forward pass shows.

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import uncovered_modules
    >>> class Scale(nn.Module):  # out = x * w: no built-in ghost rule
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = nn.Parameter(torch.ones(2))
    ...     def forward(self, x):
    ...         return x * self.w
    >>> model = nn.Sequential(Scale(), nn.Linear(2, 1))
    >>> def loss(out, t):
    ...     return (out.squeeze(1) - t) ** 2
    >>> x, y = torch.ones(3, 2), torch.zeros(3)
    >>> uncovered_modules(model)
    ['0 (Scale): no ghost rule for this module type']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return list(plan_for(model).uncovered)


def backend_choice(model: nn.Module) -> BackendChoice | None:
    """The backend ``backend='auto'`` used in the last call on ``model`` in its current
    configuration and the reasons it skipped the faster ones (None before any such call).

    >>> import torch
    >>> from torch import nn
    >>> from noisereg.gradreg import backend_choice, per_example_sq_grad_norms
    >>> class Scale(nn.Module):  # out = x * w: no built-in ghost rule
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = nn.Parameter(torch.ones(2))
    ...     def forward(self, x):
    ...         return x * self.w
    >>> model = nn.Sequential(Scale(), nn.Linear(2, 1))
    >>> def loss(out, t):
    ...     return (out.squeeze(1) - t) ** 2
    >>> x, y = torch.ones(3, 2), torch.zeros(3)
    >>> backend_choice(model) is None
    True
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # the FallbackWarning
    ...     _ = per_example_sq_grad_norms(model, loss, x, y)
    >>> choice = backend_choice(model)
    >>> choice.backend, list(choice.refused)
    ('vmap', ['ghost'])
    """
    return plan_for(model).choice
