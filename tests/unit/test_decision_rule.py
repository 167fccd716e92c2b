"""The vectorised A/B rule (what bench/stats_sim.py runs) agrees with the planner, case by case."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from controllers.api.experiment import Decision, ExperimentStatus, VariantStatus
from controllers.api.serving_settings import RolloutSettings
from controllers.decisions.experiments.decision_rule import Rule, Verdict, verdict
from controllers.decisions.experiments.observations import (
    AllocationEpoch,
    RewardStream,
    Traffic,
    VariantObservations,
)
from controllers.decisions.experiments.rollout import plan
from controllers.decisions.experiments.sequential import SequenceState, extend, interval
from tests.unit.test_rollout_plan import ab_spec

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SETTINGS = RolloutSettings(min_samples_per_variant=100)


def planned_verdict(step: int, stream: RewardStream) -> Verdict:
    share = SETTINGS.steps[step]
    status = ExperimentStatus(
        step=step,
        started_at=NOW,
        variants=[
            VariantStatus(name="champion", weight=100 - share),
            VariantStatus(name="challenger", weight=share),
        ],
    )
    counts = {name: int((stream.arm == index).sum()) for index, name in enumerate(stream.names)}
    variants = {name: VariantObservations(name=name, assigned=count) for name, count in counts.items()}
    traffic = Traffic(variants=variants, rewards=stream, epochs=epochs(stream))
    spec = ab_spec(minSamplesPerVariant=SETTINGS.min_samples_per_variant, guardrails=[])
    result = plan(spec, status, traffic, NOW)
    if result.decision == Decision.ROLL_BACK:
        return Verdict.ROLL_BACK
    if result.decision == Decision.PROMOTE:
        return Verdict.PROMOTE
    if result.decision == Decision.INCONCLUSIVE:
        return Verdict.FUTILE
    if result.waiting_for_traffic:
        return Verdict.WAIT
    assert result.decision == Decision.CONTINUE, result.reason
    return Verdict.ADVANCE if result.step == step + 1 else Verdict.HOLD


def epochs(stream: RewardStream) -> tuple[AllocationEpoch, ...]:
    """Every request a new unit, in the epoch of the share it was assigned under."""
    found = []
    for share in dict.fromkeys(stream.shares[:, stream.names.index("challenger")].tolist()):
        under = stream.shares[:, stream.names.index("challenger")] == share
        units = {name: int((under & (stream.arm == index)).sum()) for index, name in enumerate(stream.names)}
        percent = round(share * 100)
        found.append(AllocationEpoch(weights={"challenger": percent, "champion": 100 - percent}, units=units))
    return tuple(found)


def sampled_case(rng: np.random.Generator) -> tuple[int, RewardStream]:
    """Up to the current step, one epoch per step; continuous rewards with a random difference."""
    step = int(rng.integers(0, len(SETTINGS.steps)))
    mean = float(rng.uniform(0.2, 0.8))
    difference = float(rng.choice([-0.15, -0.05, 0.0, 0.05, 0.15]))
    rows = []
    for at in range(step + 1):
        weights = {"challenger": SETTINGS.steps[at], "champion": 100 - SETTINGS.steps[at]}
        for _ in range(int(rng.integers(100, 1_500))):
            arm = "challenger" if rng.random() < weights["challenger"] / 100 else "champion"
            centre = np.clip(mean + (difference if arm == "challenger" else 0.0), 0.02, 0.98)
            rows.append((arm, weights, float(rng.beta(4 * centre, 4 * (1 - centre)))))
    if not any(arm == "challenger" for arm, _, _ in rows):  # both arms present in every stream
        rows.append(("challenger", rows[-1][1], 0.5))
    return step, RewardStream.from_rows(rows)


def test_the_vectorised_rule_agrees_with_the_planner_on_sampled_cases() -> None:
    rng = np.random.default_rng(20)
    cases = [sampled_case(rng) for _ in range(240)]
    longest = max(len(stream) for _, stream in cases)
    shape = (len(cases), longest)
    reward, challenger, champion = np.zeros(shape), np.zeros(shape, bool), np.zeros(shape, bool)
    share_c, share_0 = np.zeros(shape), np.zeros(shape)  # padding has share 0: skipped by extend
    for row, (_, stream) in enumerate(cases):
        n = len(stream)
        in_c, p_c = stream.of("challenger")
        in_0, p_0 = stream.of("champion")
        reward[row, :n], challenger[row, :n], champion[row, :n] = stream.reward, in_c, in_0
        share_c[row, :n], share_0[row, :n] = p_c, p_0
    state = extend(
        SequenceState.empty((len(cases),)),
        reward,
        challenger,
        champion,
        share_c,
        share_0,
        SETTINGS.min_detectable_effect,
    )
    bounds = interval(state, SETTINGS.alpha)
    steps = np.array([step for step, _ in cases])
    vectorised = verdict(
        state.challenger_count,
        state.champion_count,
        bounds.lower,
        bounds.upper,
        steps,
        Rule.from_settings(SETTINGS),
    )
    scalar = [planned_verdict(step, stream) for step, stream in cases]
    assert [Verdict(int(v)) for v in vectorised] == scalar
    assert set(scalar) >= {Verdict.WAIT, Verdict.HOLD, Verdict.ADVANCE, Verdict.ROLL_BACK, Verdict.PROMOTE}


def test_the_rule_never_promotes_before_the_last_step_and_always_waits_below_the_minimum() -> None:
    rule = Rule.from_settings(RolloutSettings())
    assert verdict(5_000, 5_000, 0.2, 0.3, 1, rule) == Verdict.ADVANCE
    assert verdict(5_000, 5_000, 0.2, 0.3, 2, rule) == Verdict.PROMOTE
    assert verdict(199, 5_000, -0.5, -0.4, 2, rule) == Verdict.WAIT
    assert verdict(5_000, 5_000, -0.5, -0.01, 0, rule) == Verdict.ROLL_BACK
    assert verdict(300, 5_000, -0.01, 0.2, 1, rule) == Verdict.HOLD  # 2 x 200 rewards needed at step 1


def test_futility_stops_a_challenger_that_cannot_reach_the_mde_but_not_one_shown_better() -> None:
    rule = Rule.from_settings(RolloutSettings())  # MDE 0.05
    assert verdict(5_000, 5_000, -0.01, 0.04, 0, rule) == Verdict.FUTILE
    assert verdict(5_000, 5_000, 0.001, 0.04, 0, rule) == Verdict.ADVANCE  # better, if only a little
    assert verdict(5_000, 5_000, 0.001, 0.04, 2, rule) == Verdict.PROMOTE
    assert verdict(5_000, 5_000, -0.01, 0.06, 0, rule) == Verdict.ADVANCE
    assert verdict(5_000, 5_000, -0.08, 0.04, 0, rule) == Verdict.HOLD  # maybe a regression: wait for U < 0
    non_inferiority = Rule.from_settings(RolloutSettings(criterion="NonInferiority"))
    assert verdict(5_000, 5_000, -0.01, 0.04, 0, non_inferiority) == Verdict.ADVANCE
    assert verdict(5_000, 5_000, -0.01, 0.04, 2, non_inferiority) == Verdict.PROMOTE
    assert verdict(5_000, 5_000, -0.08, -0.03, 2, non_inferiority) == Verdict.ROLL_BACK
    assert verdict(5_000, 5_000, -0.03, -0.001, 2, non_inferiority) == Verdict.HOLD
