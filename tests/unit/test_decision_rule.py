"""The vectorised A/B rule (what bench/stats_sim.py runs) agrees with the planner, case by case."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from controllers.api.experiment import Decision, ExperimentStatus, VariantStatus
from controllers.api.serving_settings import RolloutSettings
from controllers.decisions.experiments.decision_rule import Rule, Verdict, verdict, verdict_from_sums
from controllers.decisions.experiments.observations import VariantObservations
from controllers.decisions.experiments.rollout import plan
from tests.unit.test_rollout_plan import ab_spec

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def planned_verdict(step: int, challenger: VariantObservations, champion: VariantObservations) -> Verdict:
    share = RolloutSettings().steps[step]
    status = ExperimentStatus(
        step=step,
        started_at=NOW,
        variants=[
            VariantStatus(name="champion", weight=100 - share),
            VariantStatus(name="challenger", weight=share),
        ],
    )
    result = plan(ab_spec(), status, {"challenger": challenger, "champion": champion}, NOW)
    if result.decision == Decision.ROLL_BACK:
        return Verdict.ROLL_BACK
    if result.decision == Decision.PROMOTE:
        return Verdict.PROMOTE
    if result.waiting_for_traffic:
        return Verdict.WAIT
    assert result.decision == Decision.CONTINUE, result.reason
    return Verdict.ADVANCE if result.step == step + 1 else Verdict.HOLD


def test_the_vectorised_rule_agrees_with_the_planner_on_sampled_cases() -> None:
    rng = np.random.default_rng(20)
    steps_percent = RolloutSettings().steps
    cases = []
    for _ in range(600):
        step = int(rng.integers(0, len(steps_percent)))
        n_challenger = int(rng.integers(120, 2_500))
        requests_champion = n_challenger * (100 - steps_percent[step]) // steps_percent[step]
        n_champion = int(min(requests_champion, rng.integers(120, 6_000)))
        mean_challenger = float(rng.uniform(0.3, 0.7))
        mean_champion = float(np.clip(mean_challenger + rng.normal(0, 0.05), 0.05, 0.95))
        spread = float(rng.uniform(0.02, 0.2))  # per-reward variance of continuous rewards
        challenger = VariantObservations(
            name="challenger",
            assigned=n_challenger,
            rewards=n_challenger,
            reward_sum=n_challenger * mean_challenger,
            reward_sum_squares=n_challenger * (mean_challenger**2 + spread),
        )
        champion = VariantObservations(
            name="champion",
            assigned=requests_champion,
            rewards=n_champion,
            reward_sum=n_champion * mean_champion,
            reward_sum_squares=n_champion * (mean_champion**2 + spread),
        )
        cases.append((step, challenger, champion))

    columns = list(
        zip(
            *[
                (
                    s,
                    c.rewards,
                    c.reward_sum,
                    c.reward_sum_squares,
                    o.rewards,
                    o.reward_sum,
                    o.reward_sum_squares,
                )
                for s, c, o in cases
            ],
            strict=True,
        )
    )
    step, n_c, sum_c, sq_c, n_0, sum_0, sq_0 = (np.array(column) for column in columns)
    vectorised, _, _ = verdict_from_sums(
        n_c, sum_c, sq_c, n_0, sum_0, sq_0, step, Rule.from_settings(RolloutSettings())
    )

    scalar = [planned_verdict(s, c, o) for s, c, o in cases]
    assert [Verdict(int(v)) for v in vectorised] == scalar
    assert set(scalar) == set(Verdict)  # every branch of the rule was exercised


def test_the_rule_never_promotes_before_the_last_step_and_always_waits_below_the_minimum() -> None:
    rule = Rule.from_settings(RolloutSettings())
    assert verdict(5_000, 5_000, 0.2, 0.3, 1, rule) == Verdict.ADVANCE
    assert verdict(5_000, 5_000, 0.2, 0.3, 2, rule) == Verdict.PROMOTE
    assert verdict(199, 5_000, -0.5, -0.4, 2, rule) == Verdict.WAIT
    assert verdict(5_000, 5_000, -0.5, -0.01, 0, rule) == Verdict.ROLL_BACK
    assert verdict(300, 5_000, -0.01, 0.2, 1, rule) == Verdict.HOLD  # 2 x 200 rewards needed at step 1
