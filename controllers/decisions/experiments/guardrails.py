"""Guardrail metrics: latency p95, error rate and cost, which can hold a challenger back but never push it.

A challenger can win on reward while failing more often, answering slower or costing more; the
platform team states how much worse each may get (``max_relative_increase`` over the champion). A
guardrail can only *veto* (no step up, no promotion) or *breach* (roll back); a guardrail that looks
good never promotes anything. Nothing is judged before both variants have served
``min_samples_per_variant`` requests.

* Error rate is a proportion, so it gets the same always-valid test as the reward: breach when the
  confidence sequence shows ``rate_c - (1 + m)·rate_0 > 0``; veto when the point estimate is over the
  allowance by more than one standard error (a point breach inside one standard error is noise,
  especially against a champion with almost no errors).
* Latency p95 and cost per request arrive as one number per variant, without a spread to test, so
  they are compared as they are: veto above the allowance, breach above twice the allowance (an
  increase that large after hundreds of requests is not estimation noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from controllers.api.serving_settings import Guardrail, GuardrailMetric, RolloutSettings
from controllers.decisions.experiments.msprt import compare_proportions, mixture_variance
from controllers.decisions.experiments.observations import VariantObservations

SEVERE_FACTOR = 2.0


class GuardrailState(StrEnum):
    PASS = "Pass"
    UNKNOWN = "Unknown"  # not enough requests, or the metric is not recorded: cannot veto
    VETO = "Veto"
    BREACH = "Breach"


@dataclass(frozen=True)
class GuardrailVerdict:
    metric: GuardrailMetric
    state: GuardrailState
    challenger: float | None
    champion: float | None
    allowed: float | None

    @property
    def sentence(self) -> str:
        if self.challenger is None or self.champion is None or self.allowed is None:
            return f"{self.metric} not judged yet"
        show = _percent if self.metric == GuardrailMetric.ERROR_RATE else _number
        return (
            f"{self.metric} {show(self.challenger)} vs champion {show(self.champion)}"
            f" (allowed up to {show(self.allowed)})"
        )


def _number(value: float) -> str:
    return f"{value:.4g}"


def _percent(value: float) -> str:
    return f"{value:.2%}"


def check_guardrails(
    challenger: VariantObservations,
    champion: VariantObservations,
    settings: RolloutSettings,
    *,
    challenger_requests: int,
    champion_requests: int,
) -> list[GuardrailVerdict]:
    """One verdict per configured guardrail. ``*_requests`` are the hashed split (see srm.hashed_split)."""
    tau2 = mixture_variance(settings.min_detectable_effect)
    enough = min(challenger_requests, champion_requests) >= settings.min_samples_per_variant
    verdicts = []
    for guardrail in settings.guardrails:
        if guardrail.metric == GuardrailMetric.ERROR_RATE:
            verdict = _error_rate(
                challenger, champion, guardrail, settings.alpha, tau2, challenger_requests, champion_requests
            )
        else:
            verdict = _point_metric(challenger, champion, guardrail)
        if not enough:
            verdict = GuardrailVerdict(
                guardrail.metric,
                GuardrailState.UNKNOWN,
                verdict.challenger,
                verdict.champion,
                verdict.allowed,
            )
        verdicts.append(verdict)
    return verdicts


def _error_rate(
    challenger: VariantObservations,
    champion: VariantObservations,
    guardrail: Guardrail,
    alpha: float,
    tau2: float,
    challenger_requests: int,
    champion_requests: int,
) -> GuardrailVerdict:
    scale = 1.0 + guardrail.max_relative_increase
    test = compare_proportions(
        challenger.errors,
        challenger_requests,
        champion.errors,
        champion_requests,
        alpha=alpha,
        tau2=tau2,
        scale=scale,
    )
    if test is None:
        return GuardrailVerdict(guardrail.metric, GuardrailState.UNKNOWN, None, None, None)
    rate, baseline = challenger.errors / challenger_requests, champion.errors / champion_requests
    if test.lower > 0:
        state = GuardrailState.BREACH
    elif test.estimate > math.sqrt(test.variance):
        state = GuardrailState.VETO
    else:
        state = GuardrailState.PASS
    return GuardrailVerdict(guardrail.metric, state, rate, baseline, scale * baseline)


def _point_metric(
    challenger: VariantObservations, champion: VariantObservations, guardrail: Guardrail
) -> GuardrailVerdict:
    if guardrail.metric == GuardrailMetric.LATENCY_P95:
        value, baseline = challenger.latency_p95_ms, champion.latency_p95_ms
    else:
        value, baseline = challenger.cost_per_request, champion.cost_per_request
    if value is None or baseline is None:
        return GuardrailVerdict(guardrail.metric, GuardrailState.UNKNOWN, value, baseline, None)
    allowed = baseline * (1.0 + guardrail.max_relative_increase)
    if value > baseline * (1.0 + SEVERE_FACTOR * guardrail.max_relative_increase) and value > allowed:
        state = GuardrailState.BREACH
    elif value > allowed:
        state = GuardrailState.VETO
    else:
        state = GuardrailState.PASS
    return GuardrailVerdict(guardrail.metric, state, value, baseline, allowed)


def in_state(verdicts: list[GuardrailVerdict], state: GuardrailState) -> list[GuardrailVerdict]:
    """The verdicts in ``state`` (e.g. every breach, to name them in a reason)."""
    return [verdict for verdict in verdicts if verdict.state == state]
