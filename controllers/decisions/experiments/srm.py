"""Sample-ratio mismatch: is the traffic split what the weights say it should be?

A split that does not match its weights means assignment is broken (a router replica on stale
weights, a variant that drops requests before they are logged, bots concentrated on one arm), and
then every comparison between the arms is biased. The industry norm is a chi-square goodness-of-fit
test of the assigned counts, with a mismatch declared at p < 0.001, and no decision while it lasts.

Two complications, both handled by testing against a *range* of shares rather than one:

* counts are cumulative while weights move (5 % → 25 % → 50 %), so the expected share of a variant
  is some mix of the weights it has had: anywhere between the smallest and the largest of them;
* a bandit's weights change on every reconcile, but never leave [floor, 1 - (N-1)·floor].

Against a range, the test uses the point of the range nearest the observed share, which can only
raise the p-value: the check stays valid (a correct split is flagged at most at the threshold rate
per look) and still catches the failures that matter, such as a variant getting no traffic. The
chi-square survival function is written out for integer degrees of freedom (no SciPy needed).

The split compared is the hash's own: a fallback request was assigned to its challenger, even
though the champion served it (see ``controllers.store.experiments`` for the attribution).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from controllers.decisions.experiments.observations import VariantObservations

MISMATCH_P_VALUE = 0.001
MIN_EXPECTED_COUNT = 5.0  # below this per cell the chi-square approximation is not trusted


@dataclass(frozen=True)
class RatioCheck:
    ok: bool
    p_value: float | None  # None: too little traffic to test yet
    observed: dict[str, float]  # share per variant, 0..1


def hashed_split(observations: Mapping[str, VariantObservations], champion: str | None) -> dict[str, int]:
    """Requests per variant as the hash assigned them: fallbacks go back to the challenger that failed."""
    split = {
        name: obs.assigned + (obs.fallbacks if name != champion else 0) for name, obs in observations.items()
    }
    if champion in split:
        others = sum(obs.fallbacks for name, obs in observations.items() if name != champion)
        split[champion] = max(0, split[champion] - others)
    return split


def chi_square_sf(statistic: float, degrees_of_freedom: int) -> float:
    """P(X >= statistic) for X ~ chi-square with integer degrees of freedom (closed forms)."""
    if degrees_of_freedom < 1:
        raise ValueError("degrees_of_freedom must be at least 1")
    if statistic <= 0:
        return 1.0
    half = statistic / 2.0
    if degrees_of_freedom % 2 == 0:
        term, total = 1.0, 1.0
        for k in range(1, degrees_of_freedom // 2):
            term *= half / k
            total += term
        return min(1.0, math.exp(-half) * total)
    total = math.erfc(math.sqrt(half))
    term = math.sqrt(half) / math.gamma(1.5)  # half^(k - 1/2) / Gamma(k + 1/2) for k = 1, 2, ...
    for k in range(1, (degrees_of_freedom + 1) // 2):
        total += math.exp(-half) * term
        term *= half / (k + 0.5)
    return min(1.0, total)


def goodness_of_fit(counts: Mapping[str, int], shares: Mapping[str, float]) -> float | None:
    """Pearson chi-square p-value of ``counts`` against exact expected ``shares`` (N - 1 degrees of freedom)."""
    total = sum(counts.values())
    expected = {name: total * shares[name] for name in counts}
    if total == 0 or min(expected.values()) < MIN_EXPECTED_COUNT:
        return None
    statistic = sum((counts[name] - expected[name]) ** 2 / expected[name] for name in counts)
    return chi_square_sf(statistic, len(counts) - 1)


def check_sample_ratio(
    counts: Mapping[str, int],
    share_ranges: Mapping[str, tuple[float, float]],
    threshold: float = MISMATCH_P_VALUE,
) -> RatioCheck:
    """Test observed counts against a (lowest, highest) expected share per variant.

    Exact shares (lowest == highest everywhere) give the usual N - 1 degree-of-freedom test. Otherwise
    each variant is tested alone against the nearest share in its range (one degree of freedom), and
    the smallest p-value is Bonferroni-corrected over the variants (two variants are one test).
    """
    if set(counts) != set(share_ranges):
        raise ValueError(f"counts name {sorted(counts)} but share ranges name {sorted(share_ranges)}")
    total = sum(counts.values())
    observed = {name: (count / total if total else 0.0) for name, count in counts.items()}
    if all(low == high for low, high in share_ranges.values()):
        p = goodness_of_fit(counts, {name: low for name, (low, _) in share_ranges.items()})
        return RatioCheck(ok=p is None or p >= threshold, p_value=p, observed=observed)
    p_values = []
    for name, count in counts.items():
        low, high = share_ranges[name]
        nearest = min(max(observed[name], low), high)
        p_values.append(
            goodness_of_fit({"in": count, "out": total - count}, {"in": nearest, "out": 1.0 - nearest})
            if 0.0 < nearest < 1.0
            else None
        )
    tested = [p for p in p_values if p is not None]
    if not tested:
        return RatioCheck(ok=True, p_value=None, observed=observed)
    corrected = min(1.0, min(tested) * (1 if len(counts) == 2 else len(counts)))
    return RatioCheck(ok=corrected >= threshold, p_value=corrected, observed=observed)
