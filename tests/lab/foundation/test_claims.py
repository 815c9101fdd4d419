"""The verdict rule on constructed per-seed values: every outcome, paired and unpaired, the
worst-seed rule, divergence, bootstrap, and a failed sanity check voiding its experiment."""

import math

import numpy as np
import pytest
from scipy import stats

from noisereg.lab.experiments.claims import ClaimSpec, shown_verdict, void_verdicts

BETTER = ClaimSpec("a-beats-b", "paper", "A scores higher than B", ">", 0.0, "the paper's sign")


def test_student_interval_matches_scipy() -> None:
    values = np.array([0.3, 0.5, 0.1, 0.4])
    claim = BETTER.decide(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert claim.interval == pytest.approx((lo, hi))
    assert claim.measured == pytest.approx(values.mean()) and claim.seeds == 4


@pytest.mark.parametrize(("values", "outcome", "verdict"), [
    ([0.30, 0.32, 0.31], "holds", "reproduced"),  # the whole interval above 0
    ([-0.30, -0.32, -0.31], "fails", "not reproduced"),  # the whole interval below 0
    ([0.3, -0.2, 0.1], "inconclusive", "inconclusive"),  # the interval straddles 0
    ([0.3], "inconclusive", "inconclusive"),  # one seed: no interval
])
def test_three_outcomes(values, outcome, verdict) -> None:
    claim = BETTER.decide(values)
    assert (claim.outcome, claim.verdict) == (outcome, verdict)


def test_paired_difference_sees_what_unpaired_cannot() -> None:
    # A is B plus 0.01 on every seed, but the seeds spread B by +-0.3: the paired difference
    # is sure, Welch's unpaired interval is not.
    b = np.array([0.2, 0.5, 0.8, 0.35])
    a = b + 0.01 + np.array([0.001, -0.001, 0.0005, 0.0])
    paired = BETTER.decide(a, baseline=b)
    unpaired = BETTER.decide(a, baseline=b, paired=False)
    assert paired.outcome == "holds" and unpaired.outcome == "inconclusive"
    assert paired.measured == pytest.approx((a - b).mean())
    welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert unpaired.interval == pytest.approx((welch.low, welch.high))


def test_unpaired_clear_difference_and_mismatched_sizes() -> None:
    claim = BETTER.decide([0.9, 0.92, 0.91, 0.9], baseline=[0.1, 0.12, 0.11], paired=False)
    assert claim.outcome == "holds"
    with pytest.raises(ValueError, match="paired baseline"):
        BETTER.decide([1.0, 2.0], baseline=[1.0])


def test_worst_rule_uses_the_worst_seed() -> None:
    tol = ClaimSpec("close", "derived", "error below 2%", "<", 0.02, "a 2% tolerance", "worst")
    assert tol.decide([0.001, 0.015, 0.003]).outcome == "holds"
    claim = tol.decide([0.001, 0.025, 0.003])
    assert claim.outcome == "fails" and claim.measured == pytest.approx(0.025)
    assert claim.interval == pytest.approx((0.001, 0.025))
    # One seed is enough for an oracle check: never inconclusive.
    assert tol.decide([0.01]).outcome == "holds"


def test_non_finite_seed_fails_and_is_named() -> None:
    claim = BETTER.decide([0.3, math.nan, 0.4])
    assert claim.outcome == "fails" and claim.measured is None and "seed(s) [1]" in claim.note
    assert BETTER.decide([0.3, None, 0.2]).outcome == "fails"  # null as stored in JSON
    assert BETTER.decide([0.3, 0.2], baseline=[0.1, math.inf]).outcome == "fails"


def test_bootstrap_statistic_is_deterministic_and_brackets() -> None:
    values = np.array([1.0, 1.2, 0.9, 1.1, 1.05])
    claim = BETTER.decide(values, statistic=np.median)
    again = BETTER.decide(values, statistic=np.median)
    assert claim.interval == again.interval
    assert values.min() <= claim.interval[0] <= np.median(values) <= claim.interval[1]
    assert claim.outcome == "holds"


def test_exploratory_and_sanity_words() -> None:
    question = ClaimSpec("q", "exploratory", "does X help?", ">", 0.0, "sign of the effect")
    check = ClaimSpec("fit", "sanity", "training accuracy", ">=", 0.99, "interpolation", "worst")
    assert question.decide([-1.0, -1.1, -0.9]).verdict == "no"  # a finding, not a failure
    assert check.decide([1.0, 0.98]).verdict == "fail"


def test_failed_sanity_voids_the_other_verdicts() -> None:
    check = ClaimSpec("fit", "sanity", "training accuracy", ">=", 0.99, "interpolation", "worst")
    claims = [BETTER.decide([0.3, 0.31, 0.32]).to_json(), check.decide([0.5, 1.0]).to_json()]
    assert void_verdicts(claims)
    assert shown_verdict(claims[0], True).startswith("void")
    assert shown_verdict(claims[1], True) == "fail"
    assert not void_verdicts(claims[:1])


@pytest.mark.parametrize(("field", "value", "message"), [
    ("source", "rumour", "source must be one of"), ("op", "==", "op must be one of"),
    ("rule", "vote", "rule must be"), ("threshold", math.nan, "threshold must be finite"),
    ("basis", "", "statement and basis"),
])
def test_spec_refuses_bad_fields(field, value, message) -> None:
    fields = dict(name="x", source="paper", statement="s", op=">", threshold=0.0, basis="b")
    fields[field] = value
    with pytest.raises(ValueError, match=message):
        ClaimSpec(**fields)
