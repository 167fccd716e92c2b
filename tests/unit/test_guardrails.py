"""Guardrails veto or breach; they wait for samples and are not fooled by noise on tiny error rates."""

from __future__ import annotations

from controllers.api.serving_settings import Guardrail, GuardrailMetric, RolloutSettings
from controllers.decisions.experiments.guardrails import GuardrailState, check_guardrails
from controllers.decisions.experiments.observations import VariantObservations

ALL = RolloutSettings(
    guardrails=[
        Guardrail(metric=GuardrailMetric.ERROR_RATE, max_relative_increase=0.1),
        Guardrail(metric=GuardrailMetric.LATENCY_P95, max_relative_increase=0.25),
        Guardrail(metric=GuardrailMetric.COST_PER_REQUEST, max_relative_increase=0.2),
    ]
)


def states(
    challenger: VariantObservations, champion: VariantObservations, settings: RolloutSettings = ALL
) -> dict[GuardrailMetric, GuardrailState]:
    verdicts = check_guardrails(
        challenger,
        champion,
        settings,
        challenger_requests=challenger.assigned,
        champion_requests=champion.assigned,
    )
    return {verdict.metric: verdict.state for verdict in verdicts}


def served(
    requests: int, *, errors: int = 0, p95: float | None = 100.0, cost: float = 1.0
) -> VariantObservations:
    return VariantObservations(
        name="v", assigned=requests, errors=errors, latency_p95_ms=p95, cost_sum=cost * requests
    )


def test_equal_variants_pass_every_guardrail() -> None:
    assert set(states(served(1_000, errors=10), served(1_000, errors=10)).values()) == {GuardrailState.PASS}


def test_latency_over_the_allowance_vetoes_and_far_over_it_breaches() -> None:
    base = served(1_000)
    assert states(served(1_000, p95=130.0), base)[GuardrailMetric.LATENCY_P95] == GuardrailState.VETO
    assert states(served(1_000, p95=160.0), base)[GuardrailMetric.LATENCY_P95] == GuardrailState.BREACH


def test_cost_over_the_allowance_vetoes() -> None:
    assert (
        states(served(1_000, cost=1.3), served(1_000))[GuardrailMetric.COST_PER_REQUEST]
        == GuardrailState.VETO
    )


def test_a_significant_error_rate_increase_breaches() -> None:
    result = states(served(2_000, errors=200), served(2_000, errors=40))
    assert result[GuardrailMetric.ERROR_RATE] == GuardrailState.BREACH


def test_one_stray_error_against_a_flawless_champion_is_noise_not_a_veto() -> None:
    result = states(served(400, errors=1), served(4_000, errors=0))
    assert result[GuardrailMetric.ERROR_RATE] == GuardrailState.PASS


def test_a_clear_but_not_yet_significant_error_increase_vetoes() -> None:
    result = states(served(400, errors=12), served(4_000, errors=40))
    assert result[GuardrailMetric.ERROR_RATE] == GuardrailState.VETO


def test_nothing_is_judged_before_the_minimum_requests() -> None:
    result = states(served(50, errors=40, p95=900.0), served(50))
    assert set(result.values()) == {GuardrailState.UNKNOWN}


def test_a_metric_that_is_not_recorded_cannot_veto() -> None:
    result = states(served(1_000, p95=None), served(1_000, p95=None))
    assert result[GuardrailMetric.LATENCY_P95] == GuardrailState.UNKNOWN
