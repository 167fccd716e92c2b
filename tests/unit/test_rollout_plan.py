"""The experiment planner, as Given / When / Then: observations and status in, weights and decision out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from controllers.api.experiment import (
    BanditSettings,
    Decision,
    ExperimentSpec,
    ExperimentStatus,
    Strategy,
    Variant,
    VariantRole,
    VariantStatus,
)
from controllers.api.serving_settings import Guardrail, GuardrailMetric, RolloutSettings
from controllers.decisions.experiments.observations import RewardStream, Traffic, VariantObservations
from controllers.decisions.experiments.rollout import check_drift, plan
from tests.unit.experiment_traffic import traffic_of

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(hours=5)


def ab_spec(**rollout: object) -> ExperimentSpec:
    return ExperimentSpec(
        variants=[
            Variant(name="champion", role=VariantRole.CHAMPION, endpoint="http://champion/v1"),
            Variant(name="challenger", endpoint="http://challenger/v1"),
        ],
        rollout=RolloutSettings.model_validate(rollout),
    )


def observed(
    name: str, requests: int, rewards: int, mean: float, *, errors: int = 0, p95: float | None = 100.0
) -> VariantObservations:
    """0/1 rewards with the given mean (so the sum of squares equals the sum)."""
    return VariantObservations(
        name=name,
        assigned=requests,
        rewards=rewards,
        reward_sum=rewards * mean,
        reward_sum_squares=rewards * mean,
        successes=round(rewards * mean),
        errors=errors,
        latency_p95_ms=p95,
    )


def split(
    share: int, challenger_rewards: int, challenger_mean: float, champion_mean: float, **challenger: object
) -> dict[str, VariantObservations]:
    """Requests split exactly as ``share`` percent says, every request rewarded."""
    total = challenger_rewards * 100 // share
    champion_rewards = total - challenger_rewards
    return {
        "challenger": observed(
            "challenger", challenger_rewards, challenger_rewards, challenger_mean, **challenger
        ),  # type: ignore[arg-type]
        "champion": observed("champion", champion_rewards, champion_rewards, champion_mean),
    }


def traffic(
    share: int, challenger_rewards: int, challenger_mean: float, champion_mean: float, **challenger: object
) -> Traffic:
    """``split`` as the planner reads it: observations, the reward stream and one allocation epoch."""
    return traffic_of(
        split(share, challenger_rewards, challenger_mean, champion_mean, **challenger),
        {"challenger": share, "champion": 100 - share},
    )


def at_step(step: int, challenger_weight: int, **fields: object) -> ExperimentStatus:
    return ExperimentStatus(
        step=step,
        started_at=STARTED,
        variants=[
            VariantStatus(name="champion", weight=100 - challenger_weight),
            VariantStatus(name="challenger", weight=challenger_weight),
        ],
        **fields,  # type: ignore[arg-type]
    )


def test_given_few_rewards_when_planned_then_it_waits_for_traffic_and_says_the_counts() -> None:
    result = plan(ab_spec(), None, traffic(5, 37, 0.5, 0.5), NOW)
    assert result.decision == Decision.CONTINUE
    assert result.waiting_for_traffic
    assert result.condition_reason == "WaitingForTraffic"
    assert "waiting for traffic" in result.reason
    assert "champion 703/200, challenger 37/200" in result.reason
    assert result.weights == {"champion": 95, "challenger": 5}
    assert not result.final


def test_given_no_sign_of_harm_and_enough_samples_at_the_step_then_the_weight_steps_up() -> None:
    result = plan(ab_spec(), at_step(0, 5), traffic(5, 400, 0.60, 0.50), NOW)
    assert result.decision == Decision.CONTINUE
    assert result.step == 1
    assert result.weights == {"champion": 75, "challenger": 25}
    assert "advanced to 25%" in result.reason


def test_given_too_few_samples_at_this_step_then_the_weight_holds() -> None:
    result = plan(ab_spec(), at_step(1, 25), traffic(25, 300, 0.60, 0.50), NOW)
    assert result.step == 1
    assert result.weights == {"champion": 75, "challenger": 25}
    assert result.condition_reason == "Evaluating"


def test_given_an_uncertain_challenger_then_the_weight_holds_at_the_first_step() -> None:
    result = plan(ab_spec(), at_step(0, 5), traffic(5, 400, 0.50, 0.50), NOW)
    assert result.step == 0
    assert result.weights == {"champion": 95, "challenger": 5}
    assert "evaluating at 5%" in result.reason


def test_given_a_regressing_challenger_then_it_is_rolled_back_to_weight_zero() -> None:
    result = plan(ab_spec(), at_step(0, 5), traffic(5, 400, 0.38, 0.55), NOW)
    assert result.decision == Decision.ROLL_BACK
    assert result.final
    assert result.weights == {"champion": 0 + 100, "challenger": 0}
    assert result.condition_reason == "RolledBack"
    assert re.search(
        r"challenger reward 0\.380 vs champion 0\.550 \(difference -0\.170, 95% CS \[-0\.\d+, -0\.\d+\],"
        r" p=[0-9.e-]+\) after 400/7600 rewards: worse than champion, rolled back",
        result.reason,
    ), result.reason


def test_given_a_better_challenger_at_the_last_step_then_it_is_promoted() -> None:
    result = plan(ab_spec(), at_step(2, 50), traffic(50, 1_000, 0.60, 0.50), NOW)
    assert result.decision == Decision.PROMOTE
    assert result.final
    assert result.weights == {"champion": 0, "challenger": 100}
    assert result.condition_reason == "Promoted"


def test_given_a_better_challenger_before_the_last_step_then_it_steps_up_instead_of_promoting() -> None:
    result = plan(ab_spec(), at_step(1, 25), traffic(25, 1_000, 0.60, 0.50), NOW)
    assert result.decision == Decision.CONTINUE
    assert result.weights["challenger"] == 50


def test_given_no_auto_promote_then_a_winner_awaits_approval_without_a_decision() -> None:
    result = plan(ab_spec(autoPromote=False), at_step(2, 50), traffic(50, 1_000, 0.60, 0.50), NOW)
    assert result.decision == Decision.CONTINUE
    assert not result.final
    assert result.condition_reason == "AwaitingApproval"
    assert "autoPromote" in result.reason
    assert result.weights == {"champion": 50, "challenger": 50}


def test_given_a_sample_ratio_mismatch_then_no_decision_is_taken() -> None:
    observations = split(5, 400, 0.30, 0.55)
    observations["champion"] = observed("champion", 2_000, 2_000, 0.55)  # 16.7 % challenger at 5 %
    weights = {"challenger": 5, "champion": 95}
    result = plan(ab_spec(), at_step(0, 5), traffic_of(observations, weights), NOW)
    assert result.decision == Decision.CONTINUE
    assert result.condition_reason == "SampleRatioMismatch"
    assert not result.sample_ratio.ok
    assert result.sample_ratio.p_value is not None
    assert result.sample_ratio.p_value < 0.001
    assert result.weights == {"champion": 95, "challenger": 5}
    assert "at weights challenger 5% / champion 95%: challenger got 16.7%" in result.reason


def test_given_a_latency_guardrail_over_its_allowance_then_promotion_is_vetoed() -> None:
    observations = traffic(50, 1_000, 0.60, 0.50, p95=135.0)  # +35 % against an allowance of +25 %
    result = plan(ab_spec(), at_step(2, 50), observations, NOW)
    assert result.decision == Decision.CONTINUE
    assert "held at 50% by guardrail: LatencyP95 135 vs champion 100" in result.reason


def test_given_a_significant_error_rate_increase_then_it_is_rolled_back_whatever_the_reward() -> None:
    observations = traffic(50, 1_000, 0.60, 0.50, errors=120)
    result = plan(ab_spec(), at_step(2, 50), observations, NOW)
    assert result.decision == Decision.ROLL_BACK
    assert result.reason.startswith("guardrail breached: ErrorRate 12.00% vs champion 0.00%")
    assert result.weights["challenger"] == 0


def test_given_good_guardrails_but_no_reward_evidence_then_nothing_is_promoted() -> None:
    spec = ab_spec(guardrails=[Guardrail(metric=GuardrailMetric.LATENCY_P95, max_relative_increase=0.1)])
    observations = traffic(50, 1_000, 0.50, 0.50, p95=50.0)  # twice as fast, same reward
    result = plan(spec, at_step(2, 50), observations, NOW)
    assert result.decision == Decision.CONTINUE


def test_given_max_duration_elapsed_then_it_is_inconclusive_with_traffic_back_on_the_champion() -> None:
    status = at_step(1, 25)
    status.started_at = NOW - timedelta(hours=73)
    result = plan(ab_spec(), status, traffic(25, 600, 0.50, 0.50), NOW)
    assert result.decision == Decision.INCONCLUSIVE
    assert result.final
    assert result.weights == {"champion": 100, "challenger": 0}
    assert "maxDuration 72h" in result.reason


def test_given_max_duration_elapsed_without_traffic_then_inconclusive_says_so() -> None:
    status = at_step(0, 5)
    status.started_at = NOW - timedelta(hours=73)
    result = plan(ab_spec(), status, traffic(5, 20, 0.50, 0.50), NOW)
    assert result.decision == Decision.INCONCLUSIVE
    assert result.reason.startswith("not enough traffic: champion 380/200, challenger 20/200 rewards")


def test_given_a_final_decision_in_the_status_then_the_plan_keeps_it_and_its_weights() -> None:
    status = at_step(0, 0, decision=Decision.ROLL_BACK, decision_reason="rolled back earlier")
    status.variants[0].weight = 100
    result = plan(ab_spec(), status, traffic(50, 1_000, 0.90, 0.50), NOW)
    assert result.decision == Decision.ROLL_BACK
    assert result.reason == "rolled back earlier"
    assert result.weights == {"champion": 100, "challenger": 0}
    assert result.final


def test_given_paused_then_weights_are_held_and_nothing_is_decided() -> None:
    spec = ab_spec()
    spec.paused = True
    result = plan(spec, at_step(1, 25), traffic(25, 1_000, 0.20, 0.60), NOW)
    assert result.decision == Decision.CONTINUE
    assert result.condition_reason == "Paused"
    assert result.weights == {"champion": 75, "challenger": 25}
    assert result.step == 1


def test_given_the_same_inputs_then_the_plan_is_the_same() -> None:
    inputs = (ab_spec(), at_step(0, 5), traffic(5, 400, 0.60, 0.50), NOW)
    assert plan(*inputs) == plan(*inputs)


def test_given_an_earlier_smaller_p_value_then_the_reported_one_never_rises() -> None:
    status = at_step(0, 5)
    status.variants[1].p_value = 0.0123
    result = plan(ab_spec(), status, traffic(5, 400, 0.50, 0.50), NOW)
    row = next(row for row in result.variants if row.name == "challenger")
    assert row.p_value == 0.0123
    assert "p=0.012" in result.reason


def test_variant_rows_carry_weights_statistics_and_the_challengers_interval() -> None:
    observations = traffic(5, 400, 0.60, 0.50, errors=4)
    result = plan(ab_spec(), at_step(0, 5), observations, NOW)
    rows = {row.name: row for row in result.variants}
    assert rows["challenger"].samples == 400
    assert rows["challenger"].mean_reward == pytest.approx(0.60)
    assert rows["challenger"].error_rate == pytest.approx(0.01)
    assert rows["challenger"].confidence_lower is not None
    assert rows["challenger"].confidence_upper is not None
    assert rows["challenger"].confidence_lower < 0.1 < rows["challenger"].confidence_upper
    assert rows["champion"].confidence_lower is None
    assert rows["champion"].weight == result.weights["champion"]


def test_traffic_starts_the_clock() -> None:
    assert plan(ab_spec(), None, Traffic(), NOW).started_at is None
    assert plan(ab_spec(), None, traffic(5, 10, 0.5, 0.5), NOW).started_at == NOW
    assert plan(ab_spec(), at_step(0, 5), traffic(5, 10, 0.5, 0.5), NOW).started_at == STARTED


def bandit_spec(champion: bool = True, **rollout: object) -> ExperimentSpec:
    names = ["prompt-a", "prompt-b", "prompt-c"]
    return ExperimentSpec(
        strategy=Strategy.BANDIT,
        variants=[
            Variant(
                name=name,
                role=VariantRole.CHAMPION if champion and index == 0 else VariantRole.CHALLENGER,
                endpoint="http://llm/v1",
                prompt_variant=name,
            )
            for index, name in enumerate(names)
        ],
        rollout=RolloutSettings.model_validate(rollout),
        bandit=BanditSettings(exploration_floor=0.05),
    )


def bandit_traffic(means: tuple[float, float, float], n: int = 900) -> Traffic:
    names = ("prompt-a", "prompt-b", "prompt-c")
    variants = {name: observed(name, n, n, mean) for name, mean in zip(names, means, strict=True)}
    return traffic_of(variants, {"prompt-a": 34, "prompt-b": 33, "prompt-c": 33})


def test_given_a_bandit_then_traffic_follows_the_chance_of_being_best() -> None:
    result = plan(bandit_spec(), None, bandit_traffic((0.50, 0.60, 0.45)), NOW)
    assert result.decision == Decision.CONTINUE
    assert sum(result.weights.values()) == 100
    assert result.weights["prompt-b"] >= 85
    assert min(result.weights.values()) >= 5
    assert result.reason.startswith("Thompson sampling: prompt-b leads")


def test_given_a_bandit_at_its_deadline_with_a_clear_leader_then_the_leader_is_promoted() -> None:
    status = ExperimentStatus(started_at=NOW - timedelta(hours=80))
    result = plan(bandit_spec(), status, bandit_traffic((0.50, 0.60, 0.45)), NOW)
    assert result.decision == Decision.PROMOTE
    assert result.weights == {"prompt-a": 0, "prompt-b": 100, "prompt-c": 0}


def test_given_a_bandit_at_its_deadline_without_a_clear_leader_then_it_is_inconclusive_naming_the_leader() -> (
    None
):
    status = ExperimentStatus(started_at=NOW - timedelta(hours=80))
    result = plan(bandit_spec(), status, bandit_traffic((0.50, 0.51, 0.45), n=300), NOW)
    assert result.decision == Decision.INCONCLUSIVE
    assert "leads (P(best)=" in result.reason
    assert result.weights == {"prompt-a": 100, "prompt-b": 0, "prompt-c": 0}


def test_given_a_bandit_without_champion_ending_inconclusive_then_its_weights_freeze() -> None:
    status = ExperimentStatus(
        started_at=NOW - timedelta(hours=80),
        variants=[
            VariantStatus(name=n, weight=w) for n, w in (("prompt-a", 40), ("prompt-b", 50), ("prompt-c", 10))
        ],
    )
    result = plan(bandit_spec(champion=False), status, bandit_traffic((0.50, 0.51, 0.45), n=300), NOW)
    assert result.decision == Decision.INCONCLUSIVE
    assert result.weights == {"prompt-a": 40, "prompt-b": 50, "prompt-c": 10}


def test_given_a_bandit_whose_champion_is_clearly_best_then_the_challengers_are_rolled_back() -> None:
    status = ExperimentStatus(started_at=NOW - timedelta(hours=80))
    result = plan(bandit_spec(), status, bandit_traffic((0.65, 0.50, 0.45)), NOW)
    assert result.decision == Decision.ROLL_BACK
    assert result.weights["prompt-a"] == 100


def test_given_a_champion_that_decays_after_promotion_then_drift_is_flagged() -> None:
    settings = RolloutSettings()
    baseline = observed("champion", 2_000, 2_000, 0.60)
    assert check_drift(baseline, observed("champion", 800, 800, 0.48), settings).regressed
    steady = check_drift(baseline, observed("champion", 800, 800, 0.59), settings)
    assert not steady.regressed
    assert steady.reason.endswith("no regression")
    waiting = check_drift(baseline, observed("champion", 50, 50, 0.1), settings)
    assert not waiting.regressed
    assert waiting.reason.startswith("waiting for traffic")


def test_an_ab_test_without_a_champion_is_refused_naming_the_field() -> None:
    spec = ab_spec()
    spec.variants[0].role = VariantRole.CHALLENGER
    with pytest.raises(ValueError, match=r"spec\.variants"):
        plan(spec, None, Traffic(), NOW)


def test_given_a_challenger_that_cannot_be_better_by_the_mde_then_it_stops_early_as_inconclusive() -> None:
    result = plan(ab_spec(), at_step(0, 5), traffic(5, 3_000, 0.50, 0.50), NOW)
    assert result.decision == Decision.INCONCLUSIVE
    assert result.final
    assert result.weights == {"champion": 100, "challenger": 0}
    assert "cannot be better than champion by the minimum detectable effect 0.05" in result.reason
    row = next(row for row in result.variants if row.name == "challenger")
    assert row.confidence_upper is not None
    assert row.confidence_upper < 0.05


def test_given_non_inferiority_then_a_challenger_not_worse_beyond_the_tolerance_is_promoted() -> None:
    spec = ab_spec(criterion="NonInferiority", regressionTolerance=0.05)
    result = plan(spec, at_step(2, 50), traffic(50, 3_000, 0.49, 0.50), NOW)
    assert result.decision == Decision.PROMOTE
    assert "not worse by more than 0.05 than champion, promoted" in result.reason
    superiority = plan(ab_spec(regressionTolerance=0.05), at_step(2, 50), traffic(50, 3_000, 0.49, 0.50), NOW)
    assert superiority.decision != Decision.PROMOTE


def test_given_non_inferiority_then_only_a_regression_beyond_the_tolerance_rolls_back() -> None:
    spec = ab_spec(criterion="NonInferiority", regressionTolerance=0.05)
    worse = plan(spec, at_step(2, 50), traffic(50, 3_000, 0.40, 0.50), NOW)
    assert worse.decision == Decision.ROLL_BACK
    assert "worse by more than 0.05 than champion, rolled back" in worse.reason
    slightly = plan(spec, at_step(2, 50), traffic(50, 3_000, 0.47, 0.50), NOW)
    assert slightly.decision != Decision.ROLL_BACK


def test_non_inferiority_without_a_tolerance_is_refused_by_the_schema() -> None:
    schema = RolloutSettings.model_json_schema()
    rules = [rule["rule"] for rule in schema.get("x-kubernetes-validations", [])]
    assert any("NonInferiority" in rule and "regressionTolerance" in rule for rule in rules)


def test_given_a_settled_decision_then_its_figures_stay_as_decided() -> None:
    status = at_step(0, 5, decision=Decision.ROLL_BACK, decision_reason="rolled back earlier")
    status.variants[0].weight, status.variants[1].weight = 100, 0
    status.variants[1].samples, status.variants[1].mean_reward = 41, 0.331
    status.variants[1].confidence_upper, status.variants[1].p_value = -0.02, 0.004
    result = plan(ab_spec(), status, traffic(50, 1_000, 0.90, 0.50), NOW)
    assert result.variants == status.variants


def test_the_sequence_held_in_the_status_narrows_the_next_look() -> None:
    status = at_step(0, 5)
    status.variants[1].confidence_lower, status.variants[1].confidence_upper = -0.30, -0.001
    result = plan(ab_spec(), status, traffic(5, 400, 0.50, 0.50), NOW)
    assert result.decision == Decision.ROLL_BACK
    row = next(row for row in result.variants if row.name == "challenger")
    assert row.confidence_upper == -0.001


def test_given_a_drift_shared_by_both_arms_while_the_weights_step_up_then_nothing_is_promoted() -> None:
    """Simpson's paradox: the challenger got most of its traffic late, when every reward was higher.
    Pooled means say +0.057; weighted by each request's assignment probability they are equal."""
    early, late = {"challenger": 5, "champion": 95}, {"challenger": 50, "champion": 50}
    rows = []
    rng = np.random.default_rng(3)
    for weights, mean, count in ((early, 0.45, 8_000), (late, 0.55, 8_000)):
        for _ in range(count):
            arm = "challenger" if rng.random() < weights["challenger"] / 100 else "champion"
            rows.append((arm, weights, float(rng.random() < mean)))
    stream = RewardStream.from_rows(rows)
    pooled = {name: stream.reward[stream.arm == stream.names.index(name)].mean() for name in stream.names}
    assert pooled["challenger"] - pooled["champion"] > 0.04  # what pooled sums would promote on
    variants = {name: observed(name, 8_000, 8_000, 0.5) for name in ("challenger", "champion")}
    traffic_ = Traffic(variants=variants, rewards=stream)
    result = plan(ab_spec(), at_step(2, 50), traffic_, NOW)
    assert result.decision != Decision.PROMOTE
    rows_ = {row.name: row for row in result.variants}
    assert rows_["challenger"].confidence_lower is not None
    assert rows_["challenger"].confidence_lower < 0 < (rows_["challenger"].confidence_upper or 0)
    assert abs((rows_["challenger"].mean_reward or 0) - (rows_["champion"].mean_reward or 0)) < 0.03


def test_a_step_of_a_hundred_percent_is_refused_it_would_leave_nothing_to_compare_with() -> None:
    with pytest.raises(ValueError, match="less than or equal to 99"):
        RolloutSettings.model_validate({"steps": [5, 100]})
    assert RolloutSettings.model_validate({"steps": [5, 99]}).steps == [5, 99]
