"""Drift after promotion: is the champion now worse than it was when it won?

A promoted model can decay (the traffic changes, a dependency changes, the world moves on). The
operator keeps two windows of the champion's own traffic — a baseline from just after promotion and
the recent one — and asks this check on every reconcile; a regression sends traffic back to the
previous champion.

It is the experiment's own sequential test, read one-sided: regressed when the confidence
sequence of (recent - baseline) mean reward lies entirely below 0, or when the error-rate guardrail is
significantly breached. Only the lower side acts, so a stable champion is flagged with probability
at most alpha (about alpha/2) however often the check runs; no verdict before both windows hold
``min_samples_per_variant`` rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

from controllers.api.serving_settings import RolloutSettings
from controllers.decisions.experiments.guardrails import GuardrailState, check_guardrails, in_state
from controllers.decisions.experiments.msprt import compare_means, mixture_variance
from controllers.decisions.experiments.observations import VariantObservations


@dataclass(frozen=True)
class DriftVerdict:
    regressed: bool
    reason: str


def check_drift(
    baseline: VariantObservations, recent: VariantObservations, settings: RolloutSettings
) -> DriftVerdict:
    need = settings.min_samples_per_variant
    if baseline.rewards < need or recent.rewards < need:
        return DriftVerdict(
            False,
            f"waiting for traffic: baseline {baseline.rewards}/{need}, recent {recent.rewards}/{need} rewards",
        )
    tau2 = mixture_variance(settings.min_detectable_effect)
    test = compare_means(recent, baseline, alpha=settings.alpha, tau2=tau2)
    assert test is not None  # both windows hold at least min_samples_per_variant >= 10 rewards
    said = (
        f"recent reward {recent.mean_reward:.3f} vs baseline {baseline.mean_reward:.3f}"
        f" (difference {test.estimate:+.3f}, {100 * (1 - settings.alpha):g}% CS"
        f" [{test.lower:+.3f}, {test.upper:+.3f}]) over {recent.rewards}/{baseline.rewards} samples"
    )
    breaches = in_state(
        check_guardrails(
            recent,
            baseline,
            settings,
            challenger_requests=recent.assigned + recent.fallbacks,
            champion_requests=baseline.assigned + baseline.fallbacks,
        ),
        GuardrailState.BREACH,
    )
    if test.upper < 0:
        return DriftVerdict(True, f"{said}: the champion regressed")
    if breaches:
        return DriftVerdict(True, "guardrail breached: " + "; ".join(b.sentence for b in breaches))
    return DriftVerdict(False, f"{said}: no regression")
