"""A person's request on an Experiment, as Given / When / Then: each action on an experiment that is
still running, one awaiting approval, one paused and one already decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controllers.api.experiment import Decision, ExperimentSpec, ExperimentStatus
from controllers.api.intervention import Action, Intervention
from controllers.decisions.experiments.evidence import ExperimentPlan
from controllers.decisions.experiments.interventions import Ruling, rule, settled, unroutable
from controllers.decisions.experiments.observations import Traffic
from controllers.decisions.experiments.rollout import plan
from tests.unit.test_rollout_plan import ab_spec, at_step, bandit_spec, bandit_traffic, traffic

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ask(action: Action, reason: str = "on call says so", by: str = "alice") -> Intervention:
    return Intervention(id=f"{action.value.lower()}-1", action=action, by=by, at=NOW, reason=reason)


def answer(
    action: Action,
    spec: ExperimentSpec,
    status: ExperimentStatus | None,
    seen: Traffic,
    reason: str = "on call",
) -> tuple[Ruling, ExperimentPlan]:
    decided = plan(spec, status, seen, NOW)
    return rule(ask(action, reason), spec, status, seen, NOW, decided), decided


# An experiment at its first step (5 %), still gathering evidence; one whose winner awaits a person;
# one paused; one already rolled back.
RUNNING = (ab_spec(), at_step(0, 5), traffic(5, 400, 0.50, 0.50))
AWAITING = (ab_spec(autoPromote=False), at_step(2, 50), traffic(50, 1_000, 0.60, 0.50))
PAUSED = (ab_spec().model_copy(update={"paused": True}), at_step(1, 25), traffic(25, 400, 0.5, 0.5))
DECIDED_STATUS = at_step(0, 5, decision=Decision.ROLL_BACK, decision_reason="challenger worse, rolled back")
DECIDED = (ab_spec(), DECIDED_STATUS, traffic(5, 400, 0.50, 0.50))


def test_promote_on_a_running_experiment_promotes_the_challenger_now_at_the_figures_of_the_moment() -> None:
    ruling, decided = answer(Action.PROMOTE, *RUNNING, reason="the new adapter fixes the outage")
    assert ruling.honoured
    assert ruling.forced is not None
    assert ruling.forced.decision == Decision.PROMOTE
    assert ruling.forced.final
    assert ruling.forced.weights == {"champion": 0, "challenger": 100}
    assert ruling.forced.reason == "promoted by alice: the new adapter fixes the outage"
    assert ruling.forced.condition_reason == "Promoted"  # what the sticky plan says afterwards too
    # the status rows keep the figures gathered so far, with the new weights
    rows = {row.name: row for row in ruling.forced.variants}
    assert rows["challenger"].samples == {r.name: r for r in decided.variants}["challenger"].samples == 400
    assert rows["challenger"].weight == 100
    assert ruling.outcome == "promoted: all traffic on challenger"
    assert ruling.event == (
        "Normal",
        "Promote",
        "Promote asked by alice (the new adapter fixes the outage): promoted: all traffic on challenger",
    )


def test_abort_on_a_running_experiment_rolls_back_with_all_traffic_on_the_champion() -> None:
    ruling, _ = answer(Action.ABORT, *RUNNING, reason="bad outputs")
    assert ruling.honoured
    assert ruling.forced is not None
    assert ruling.forced.decision == Decision.ROLL_BACK
    assert ruling.forced.weights == {"champion": 100, "challenger": 0}
    assert ruling.forced.reason == "aborted by alice: bad outputs"
    assert ruling.forced.condition_reason == "RolledBack"
    assert ruling.outcome == "rolled back: all traffic on champion"


@pytest.mark.parametrize("action", [Action.PROMOTE, Action.ABORT])
def test_promote_and_abort_need_no_evidence_and_work_while_paused(action: Action) -> None:
    ruling, decided = answer(action, *PAUSED)
    assert decided.condition_reason == "Paused"
    assert ruling.honoured
    assert ruling.forced is not None
    assert ruling.forced.final


def test_a_request_without_a_reason_says_so_in_the_decision() -> None:
    spec, status, seen = RUNNING
    decided = plan(spec, status, seen, NOW)
    ruling = rule(ask(Action.ABORT, reason=""), spec, status, seen, NOW, decided)
    assert ruling.forced is not None
    assert ruling.forced.reason == "aborted by alice: no reason given"


def test_approve_of_a_winner_awaiting_approval_promotes_it_as_auto_promote_would() -> None:
    ruling, decided = answer(Action.APPROVE, *AWAITING, reason="reviewed the samples")
    assert decided.condition_reason == "AwaitingApproval"
    assert ruling.honoured
    assert ruling.forced is not None
    assert ruling.forced.decision == Decision.PROMOTE
    assert ruling.forced.weights == {"champion": 0, "challenger": 100}
    assert ruling.forced.reason.endswith(", promoted; approved by alice: reviewed the samples")
    assert "better than champion" in ruling.forced.reason
    assert ruling.outcome == "approved: Promote"


def test_approve_of_a_bandit_leader_awaiting_approval_decides_as_auto_promote_would() -> None:
    spec = bandit_spec(autoPromote=False)
    status = ExperimentStatus(started_at=NOW - timedelta(hours=80))
    ruling, decided = answer(Action.APPROVE, spec, status, bandit_traffic((0.50, 0.60, 0.45)))
    assert decided.condition_reason == "AwaitingApproval"
    assert ruling.forced is not None
    assert ruling.forced.decision == Decision.PROMOTE
    assert ruling.forced.weights == {"prompt-a": 0, "prompt-b": 100, "prompt-c": 0}


@pytest.mark.parametrize(
    ("case", "said"),
    [(RUNNING, "nothing awaits approval: challenger reward"), (PAUSED, "nothing awaits approval: paused:")],
    ids=["running", "paused"],
)
def test_approve_with_nothing_awaiting_approval_is_declined_saying_what_it_does_instead(
    case: tuple[ExperimentSpec, ExperimentStatus, Traffic], said: str
) -> None:
    ruling, _ = answer(Action.APPROVE, *case)
    assert not ruling.honoured
    assert ruling.forced is None
    assert ruling.outcome.startswith(f"declined: {said}")
    assert ruling.event[:2] == ("Warning", "InterventionDeclined")


def test_pause_of_a_paused_experiment_records_the_weights_it_holds() -> None:
    ruling, _ = answer(Action.PAUSE, *PAUSED)
    assert ruling.honoured
    assert ruling.forced is None
    assert ruling.outcome == "weights held at champion 75%, challenger 25%"


def test_pause_whose_switch_was_turned_back_is_declined() -> None:
    ruling, _ = answer(Action.PAUSE, *RUNNING)
    assert not ruling.honoured
    assert ruling.outcome.startswith("declined: spec.paused is false")


def test_resume_of_a_running_experiment_says_what_it_does_now() -> None:
    ruling, _ = answer(Action.RESUME, *RUNNING)
    assert ruling.honoured
    assert ruling.forced is None
    assert ruling.outcome.startswith("resumed: challenger reward")


def test_resume_while_still_paused_is_declined() -> None:
    ruling, _ = answer(Action.RESUME, *PAUSED)
    assert not ruling.honoured
    assert ruling.outcome.startswith("declined: spec.paused is still true")


@pytest.mark.parametrize("action", list(Action))
def test_every_request_on_a_decided_experiment_is_declined_naming_the_decision(action: Action) -> None:
    ruling, decided = answer(action, *DECIDED)
    assert decided.decision == Decision.ROLL_BACK  # the decision is sticky
    assert not ruling.honoured
    assert ruling.forced is None
    assert ruling.outcome == (
        "declined: the experiment is already decided (RollBack: challenger worse, rolled back)"
    )
    assert settled(ask(action), DECIDED_STATUS).outcome == ruling.outcome


@pytest.mark.parametrize("action", [Action.RETRY, Action.TRAIN])
def test_run_and_policy_actions_do_not_apply_to_an_experiment(action: Action) -> None:
    ruling, _ = answer(action, *RUNNING)
    assert ruling.outcome == f"declined: {action.value} does not apply to an Experiment"


def test_promote_of_a_bandit_with_several_challengers_is_declined() -> None:
    spec = bandit_spec()
    ruling, _ = answer(Action.PROMOTE, spec, None, bandit_traffic((0.5, 0.6, 0.45)))
    assert not ruling.honoured
    assert "Promote needs one challenger and this experiment has 2 (prompt-b, prompt-c)" in ruling.outcome


def test_abort_of_a_bandit_without_a_champion_is_declined() -> None:
    ruling, _ = answer(Action.ABORT, bandit_spec(champion=False), None, bandit_traffic((0.5, 0.6, 0.45)))
    assert not ruling.honoured
    assert "no champion to give the traffic back to" in ruling.outcome


def test_an_ending_the_models_cannot_carry_out_is_declined_saying_why() -> None:
    ruling, _ = answer(Action.PROMOTE, *RUNNING)
    declined = unroutable(ruling, "waiting for ShadowModel m (variant challenger) to serve")
    assert declined.forced is None
    assert not declined.honoured
    assert (
        declined.outcome
        == "declined: cannot promote now: waiting for ShadowModel m (variant challenger) to serve"
    )


def test_an_outcome_fits_the_status_field() -> None:
    long = at_step(0, 5, decision=Decision.ROLL_BACK, decision_reason="x" * 1000)
    ruling = settled(ask(Action.ABORT), long)
    assert len(ruling.outcome) == 300
    assert ruling.request.model_copy(update={"outcome": ruling.outcome}).outcome == ruling.outcome


def test_the_same_inputs_give_the_same_answer() -> None:
    first, _ = answer(Action.ABORT, *RUNNING)
    second, _ = answer(Action.ABORT, *RUNNING)
    assert first == second
