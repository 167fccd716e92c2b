"""The drift watch's pure decisions: whether a promoting experiment still watches, what its champion's
two windows say, and the evidence a drift rollback leaves on the ShadowModel."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controllers.api.common import Condition, ConditionStatus
from controllers.api.experiment import FINAL_DRIFT_STAGES as FINAL_STAGES
from controllers.api.experiment import DriftStage as Stage
from controllers.api.serving_settings import RolloutSettings
from controllers.decisions.experiments.drift_watch import (
    DriftStep,
    DriftWindows,
    judge,
    rollback_evidence,
    stage_of,
    stop_reason,
    window_size,
)
from controllers.decisions.experiments.observations import VariantObservations

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
KEY = "team/coder-0002"
SETTINGS = RolloutSettings.model_validate({"minSamplesPerVariant": 50})


def window(
    mean: float, rewards: int = 50, *, requests: int | None = None, errors: int = 0
) -> VariantObservations:
    """0/1 rewards with the given mean (so the sum of squares equals the sum)."""
    return VariantObservations(
        name="challenger",
        assigned=rewards if requests is None else requests,
        rewards=rewards,
        reward_sum=rewards * mean,
        reward_sum_squares=rewards * mean,
        successes=round(rewards * mean),
        errors=errors,
        latency_p95_ms=100.0,
    )


def windows(baseline: VariantObservations, recent: VariantObservations) -> DriftWindows:
    return DriftWindows(rewards=baseline.rewards + recent.rewards, size=50, baseline=baseline, recent=recent)


def drift(reason: str) -> Condition:
    return Condition(type="Drift", status=ConditionStatus.TRUE, reason=reason, last_transition_time=NOW)


def stop(**facts: str | None) -> DriftStep | None:
    """stop_reason for an experiment that owns the route and whose challenger reigns, but for ``facts``."""
    given: dict[str, str | None] = {
        "route_owner": KEY,
        "successor": None,
        "champion": "coder-0002",
        "promoted": "coder-0002",
        "policy": "coder",
        **facts,
    }
    return stop_reason(
        KEY,
        given["route_owner"],
        given["successor"],
        given["champion"],
        given["promoted"],
        route="coder",
        policy=given["policy"],
    )


def test_the_window_is_as_large_as_the_samples_an_experiment_needs_per_variant() -> None:
    assert window_size(SETTINGS) == 50


def test_a_stored_drift_condition_gives_its_stage_and_a_foreign_reason_none() -> None:
    assert stage_of(None) is None
    assert stage_of(drift("RollingBack")) == Stage.ROLLING_BACK
    assert stage_of(drift("Regressed")) in FINAL_STAGES
    assert stage_of(drift("SomethingElse")) is None
    assert Stage.WAITING not in FINAL_STAGES
    assert Stage.ROLLING_BACK not in FINAL_STAGES  # its effects are still to be finished


def test_an_experiment_that_owns_the_route_and_whose_challenger_reigns_keeps_watching() -> None:
    assert stop() is None


@pytest.mark.parametrize(
    ("facts", "stage", "said"),
    [
        ({"successor": "coder-0003"}, Stage.SUPERSEDED, "experiment coder-0003 follows on this track"),
        ({"route_owner": "team/coder-0003"}, Stage.SUPERSEDED, "route coder feeds team/coder-0003"),
        ({"route_owner": None}, Stage.SUPERSEDED, "route coder is gone"),
        ({"champion": "coder-0003"}, Stage.CHAMPION_CHANGED, "now coder-0003"),
        ({"champion": None}, Stage.CHAMPION_CHANGED, "now the plain base model"),
    ],
)
def test_when_the_track_moves_on_the_watch_stops_saying_why(
    facts: dict[str, str | None], stage: Stage, said: str
) -> None:
    found = stop(**facts)
    assert found is not None
    assert found.stage == stage
    assert found.status == ConditionStatus.FALSE
    assert stage in FINAL_STAGES
    assert said in found.message
    assert "stopped watching for drift" in found.message


def test_a_hand_made_experiment_has_no_policy_champion_to_lose() -> None:
    assert stop(policy=None, champion=None) is None


def test_before_twice_the_window_of_rewards_the_watch_waits_and_says_how_far_it_is() -> None:
    step = judge(DriftWindows(rewards=37, size=50), SETTINGS, "challenger")
    assert step.stage == Stage.WAITING
    assert step.status == ConditionStatus.UNKNOWN
    assert "37/100 rewards since promotion" in step.message


def test_a_champion_that_holds_its_level_is_not_drifting() -> None:
    step = judge(windows(window(0.80), window(0.78)), SETTINGS, "challenger")
    assert step.stage == Stage.WATCHING
    assert step.status == ConditionStatus.FALSE
    assert step.message.endswith("no regression")


def test_a_champion_far_below_its_own_baseline_is_rolled_back() -> None:
    step = judge(windows(window(0.80), window(0.20)), SETTINGS, "challenger")
    assert step.stage == Stage.ROLLING_BACK
    assert step.status == ConditionStatus.TRUE
    assert "recent reward 0.200 vs baseline 0.800" in step.message
    assert step.message.startswith("challenger since promotion: ")


def test_a_champion_that_starts_failing_requests_is_rolled_back_on_the_error_guardrail() -> None:
    settings = RolloutSettings.model_validate({"minSamplesPerVariant": 50})
    baseline = window(0.8, requests=1_000, errors=0)
    recent = window(0.8, requests=1_000, errors=300)
    step = judge(windows(baseline, recent), settings, "challenger")
    assert step.stage == Stage.ROLLING_BACK
    assert "guardrail breached" in step.message


def test_the_rollback_evidence_names_the_experiment_the_reason_and_the_windows() -> None:
    found = windows(window(0.80), window(0.20))
    evidence = rollback_evidence("coder-0002", "challenger since promotion: it regressed", found)
    assert evidence.experiment == "coder-0002"
    assert evidence.reason == "drift after promotion: challenger since promotion: it regressed"
    assert evidence.samples == 50
    assert evidence.mean_delta == pytest.approx(-0.6)
    bare = rollback_evidence("coder-0002", "it regressed", DriftWindows(rewards=3, size=50))
    assert (bare.samples, bare.mean_delta) == (0, None)
    assert bare.to_wire()["reason"] == "drift after promotion: it regressed"
