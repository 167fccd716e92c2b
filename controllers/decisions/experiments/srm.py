"""Sample-ratio mismatch: is the traffic split what the weights say it should be?

A split that does not match its weights means assignment is broken (a router replica on stale
weights, a variant that drops requests before they are logged, bots concentrated on one arm), and
then every comparison between the arms is biased, so no decision is taken while it lasts.

The check is itself sequential, because the operator looks on every reconcile: a chi-square test at
p < 0.001 on every look blocks a few percent of correct experiments at some point, and one against a
range of shares after a step-up lets a challenger at 10 % instead of 50 % through. Instead, for each
allocation epoch (one set of weights the router assigned by), the units first seen in that epoch are
a multinomial sample from the epoch's exact shares, and

    BF_e = [Γ(A) / Γ(A + n)] · Π_j Γ(a_j + x_j) / Γ(a_j)  /  Π_j π_j^x_j,   a_j = CONCENTRATION · π_j

(a Dirichlet-multinomial mixture over the alternatives against the expected shares π; Lindon & Malek,
"Anytime-valid inference for multinomial count data", 2022) is a nonnegative martingale with mean 1
when assignment works. The product over epochs is one too, so P(ever Π BF_e ≥ 1/MISMATCH_P_VALUE)
≤ MISMATCH_P_VALUE over the whole experiment, however often it is looked at and however the weights
move. The p-value is 1/Π BF_e; a mismatch names the epoch with the strongest evidence and its shares.

A unit counts in the epoch of its first request only (``AllocationEpoch``): a returning user's variant
was decided earlier. Traffic to a variant the epoch gave weight 0 is a mismatch outright.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controllers.decisions.experiments.observations import AllocationEpoch, VariantObservations

MISMATCH_P_VALUE = 0.001
CONCENTRATION = 100.0  # prior strength: detects a 50 % share served at 40 % within a few hundred units


@dataclass(frozen=True)
class RatioCheck:
    ok: bool
    p_value: float | None  # None: no units yet
    epoch: AllocationEpoch | None = None  # the epoch with the strongest evidence of a mismatch

    def observed(self) -> dict[str, float]:
        """Share of the strongest epoch's new units per variant, 0..1."""
        if self.epoch is None:
            return {}
        total = sum(self.epoch.units.values())
        return {name: (count / total if total else 0.0) for name, count in self.epoch.units.items()}

    def sentence(self) -> str:
        """'at weights b 50% / a 50%: b got 10.0% of 412 new units (p=3e-12)'."""
        if self.epoch is None:
            return "no traffic yet"
        observed, total = self.observed(), sum(self.epoch.units.values())
        shares = " / ".join(f"{name} {weight}%" for name, weight in self.epoch.weights.items())
        got = ", ".join(f"{name} got {observed.get(name, 0.0):.1%}" for name in self.epoch.weights)
        return f"at weights {shares}: {got} of {total} new units (p={self.p_value:.2g})"


def log_bayes_factor(epoch: AllocationEpoch) -> float:
    """log BF of one epoch's unit counts against its weights (+inf: traffic where the weight is 0)."""
    total_weight = sum(epoch.weights.values())
    if total_weight <= 0:
        return 0.0
    result, prior, count = 0.0, 0.0, 0
    for name, units in epoch.units.items():
        share = epoch.weights.get(name, 0) / total_weight
        if share <= 0.0:
            if units > 0:
                return math.inf
            continue
        a = CONCENTRATION * share
        result += math.lgamma(a + units) - math.lgamma(a) - units * math.log(share)
        prior, count = prior + a, count + units
    for name, weight in epoch.weights.items():  # variants with weight but no units yet
        if name not in epoch.units and weight > 0:
            prior += CONCENTRATION * weight / total_weight
    return result + math.lgamma(prior) - math.lgamma(prior + count)


def check_sample_ratio(epochs: Sequence[AllocationEpoch], threshold: float = MISMATCH_P_VALUE) -> RatioCheck:
    """The sequential test over every epoch (module docstring)."""
    counted = [epoch for epoch in epochs if sum(epoch.units.values()) > 0]
    if not counted:
        return RatioCheck(ok=True, p_value=None)
    evidence = [log_bayes_factor(epoch) for epoch in counted]
    total = sum(evidence)
    p_value = 0.0 if math.isinf(total) else min(1.0, math.exp(-total))
    strongest = counted[max(range(len(counted)), key=lambda index: evidence[index])]
    return RatioCheck(ok=p_value >= threshold, p_value=p_value, epoch=strongest)


def hashed_split(observations: Mapping[str, VariantObservations], champion: str | None) -> dict[str, int]:
    """Requests per variant as the hash assigned them: fallbacks go back to the challenger that failed."""
    split = {
        name: obs.assigned + (obs.fallbacks if name != champion else 0) for name, obs in observations.items()
    }
    if champion in split:
        others = sum(obs.fallbacks for name, obs in observations.items() if name != champion)
        split[champion] = max(0, split[champion] - others)
    return split
