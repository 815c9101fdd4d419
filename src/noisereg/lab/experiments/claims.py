"""Claims as evidence: where each claim comes from and a verdict decided from the seeds.

A :class:`ClaimSpec` is written down before any result is seen (module level in the
experiment): its ``source``, its statement in this library's words, the comparison
``value <op> threshold`` and where the threshold comes from (``basis``). The experiment's
``claims(summary)`` hands each spec the per-seed values and gets a decided :class:`Claim`.

Sources:

* ``paper``: what the paper states (the experiment names the paper);
* ``derived``: a consequence this library derives (the statement names the derivation);
* ``exploratory``: a question this library asks; the answer is a finding (yes / no);
* ``sanity``: the run is valid (training fits, nothing diverged); a failed sanity check voids
  the other verdicts of its experiment.

Rules:

* ``interval``: the mean over seeds with a two-sided 95% Student t interval
  (``mean ± t_{0.975, n-1} s / sqrt(n)``), or, when ``statistic`` is given (a statistic that is
  not a mean), a percentile bootstrap over the seeds with a fixed generator. The claim holds
  when the whole interval lies on the claimed side of the threshold, fails when the whole
  interval lies on the other side, and is inconclusive otherwise (always with one seed).
  A baseline turns the values into a difference: paired per seed (same data and
  initialization) or, unpaired, Welch's interval on the difference of means.
* ``worst``: checks against an exact oracle or a tolerance; the worst seed decides
  (holds or fails, never inconclusive).

A non-finite value on any seed (a diverged run) makes the claim fail, with the seeds named.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from noisereg._seeding import numpy_generator
from noisereg.lab._compare import OPS, check_op, goal

Source = Literal["paper", "derived", "exploratory", "sanity"]
Rule = Literal["interval", "worst"]
SOURCES: tuple[str, ...] = ("paper", "derived", "exploratory", "sanity")
OUTCOMES: tuple[str, ...] = ("holds", "fails", "inconclusive")

# The word a reader sees, per source and outcome: an exploratory question is answered, never
# "not reproduced"; a sanity check passes or fails.
VERDICTS: dict[str, dict[str, str]] = {
    "paper": {"holds": "reproduced", "fails": "not reproduced", "inconclusive": "inconclusive"},
    "derived": {"holds": "reproduced", "fails": "not reproduced", "inconclusive": "inconclusive"},
    "exploratory": {"holds": "yes", "fails": "no", "inconclusive": "inconclusive"},
    "sanity": {"holds": "pass", "fails": "fail", "inconclusive": "inconclusive"},
}
VOID = "void (sanity check failed)"

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 4000


@dataclass(frozen=True)
class Claim:
    """A decided claim, as stored in ``summary.json`` and shown in the report."""

    name: str
    source: str
    statement: str
    basis: str
    expected: str
    rule: str
    measured: float | None
    interval: tuple[float, float] | None
    seeds: int
    outcome: str
    verdict: str
    note: str = ""

    @property
    def holds(self) -> bool:
        return self.outcome == "holds"

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["interval"] = list(self.interval) if self.interval is not None else None
        return record


@dataclass(frozen=True)
class ClaimSpec:
    """A claim fixed before results are seen: ``value <op> threshold`` decided by ``rule``."""

    name: str
    source: Source
    statement: str
    op: str
    threshold: float
    basis: str
    rule: Rule = "interval"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {self.source!r}")
        check_op(self.op)
        if self.rule not in ("interval", "worst"):
            raise ValueError(f"rule must be 'interval' or 'worst'; got {self.rule!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite; got {self.threshold!r}")
        if not self.statement or not self.basis:
            raise ValueError(f"claim {self.name!r}: statement and basis must be given")

    @property
    def expected(self) -> str:
        return goal(self.op, self.threshold)

    def decide(self, values: Sequence[float] | np.ndarray, *,
               baseline: Sequence[float] | np.ndarray | None = None, paired: bool = True,
               statistic: Callable[[np.ndarray], float] | None = None,
               note: str = "") -> Claim:
        """Decide the claim from per-seed ``values`` (one number per seed).

        ``baseline`` (per seed) makes the claim about ``values - baseline``: paired per seed, or
        Welch's interval on the difference of means with ``paired=False``. ``statistic``
        (``interval`` rule only) replaces the mean by a bootstrapped statistic of the values.
        """
        a = _as_values(values, "values")
        b = None if baseline is None else _as_values(baseline, "baseline")
        if b is not None and paired and len(b) != len(a):
            raise ValueError(f"paired baseline needs one value per seed: {len(a)} values, "
                             f"{len(b)} baseline values")
        if b is not None and statistic is not None:
            raise ValueError("give either a baseline or a statistic, not both")
        diverged = [i for i, v in enumerate(a) if not math.isfinite(v)]
        if b is not None:
            diverged += [i for i, v in enumerate(b) if not math.isfinite(v) and i not in diverged]
        notes = [note] if note else []
        if b is not None:
            notes.append("paired by seed" if paired else "unpaired (Welch)")
        if diverged:
            notes.append(f"non-finite value (diverged) on seed(s) {sorted(diverged)}")
            return self._claim(None, None, len(a), "fails", notes)
        if self.rule == "worst":
            diff = a - b if b is not None and paired else a
            if b is not None and not paired:
                raise ValueError("the 'worst' rule compares seeds one by one: baseline must be "
                                 "paired")
            worst = float(diff.max() if self.op in ("<", "<=") else diff.min())
            outcome = "holds" if OPS[self.op](worst, self.threshold) else "fails"
            notes.append(f"worst of {len(diff)} seed(s)")
            return self._claim(worst, (float(diff.min()), float(diff.max())), len(diff),
                               outcome, notes)
        if b is not None and not paired:
            centre, interval = _welch(a, b)
            n = min(len(a), len(b))
        elif statistic is not None:
            centre, interval = float(statistic(a)), _bootstrap(a, statistic)
            n = len(a)
            notes.append("bootstrap interval")
        else:
            diff = a - b if b is not None else a
            centre, interval = float(diff.mean()), _student(diff)
            n = len(diff)
        return self._claim(centre, interval, n, self._outcome(interval), notes)

    def _outcome(self, interval: tuple[float, float] | None) -> str:
        if interval is None:
            return "inconclusive"
        lo, hi = interval
        check = OPS[self.op]
        if check(lo, self.threshold) and check(hi, self.threshold):
            return "holds"
        if not check(lo, self.threshold) and not check(hi, self.threshold):
            return "fails"
        return "inconclusive"

    def _claim(self, measured: float | None, interval: tuple[float, float] | None, n: int,
               outcome: str, notes: list[str]) -> Claim:
        return Claim(self.name, self.source, self.statement, self.basis, self.expected,
                     self.rule, measured, interval, n, outcome, VERDICTS[self.source][outcome],
                     "; ".join(notes))


def _as_values(values: Any, what: str) -> np.ndarray:
    array = np.asarray([math.nan if v is None else v for v in np.ravel(np.asarray(values,
                                                                                  dtype=object))],
                       dtype=float)
    if array.size == 0:
        raise ValueError(f"{what} must hold at least one per-seed value")
    return array


def _student(values: np.ndarray) -> tuple[float, float] | None:
    n = len(values)
    if n < 2:
        return None
    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return (mean - half, mean + half)


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[float, float] | None]:
    centre = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return centre, None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:
        return centre, (centre, centre)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof) * se)
    return centre, (centre - half, centre + half)


def _bootstrap(values: np.ndarray,
               statistic: Callable[[np.ndarray], float]) -> tuple[float, float] | None:
    """Percentile bootstrap over seeds; the generator is fixed so the verdict is reproducible."""
    if len(values) < 2:
        return None
    rng = numpy_generator(0, "bootstrap")
    picks = rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))
    draws = np.array([statistic(values[p]) for p in picks], dtype=float)
    tail = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return (float(lo), float(hi))


def void_verdicts(claims: list[dict[str, Any]]) -> bool:
    """True when a sanity claim among ``claims`` (JSON records) failed: the rest is void."""
    return any(c["source"] == "sanity" and c["outcome"] == "fails" for c in claims)


def shown_verdict(claim: dict[str, Any], void: bool) -> str:
    """The verdict the report shows: void for a non-sanity claim of an invalid experiment."""
    return VOID if void and claim["source"] != "sanity" else claim["verdict"]
