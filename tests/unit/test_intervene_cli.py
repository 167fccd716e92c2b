"""``kaizen promote|abort|approve|pause|resume`` before anything is written: which kind a person
means (kubectl's names) and why a request cannot apply to the object as it is."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api import experiment, learningpolicy
from controllers.api.intervention import Action
from controllers.cli.intervene import refusal, resolve
from controllers.cli.requests import RequestError

BOTH = (experiment.INFO, learningpolicy.INFO)


@pytest.mark.parametrize("typed", ["experiment", "Experiment", "experiments", "exp", "kexp"])
def test_an_experiment_is_named_as_kubectl_names_it(typed: str) -> None:
    assert resolve(typed, BOTH, "pause") is experiment.INFO


@pytest.mark.parametrize("typed", ["learningpolicy", "learningpolicies", "lp"])
def test_a_policy_is_named_as_kubectl_names_it(typed: str) -> None:
    assert resolve(typed, BOTH, "pause") is learningpolicy.INFO


def test_a_kind_the_command_does_not_act_on_is_refused_naming_the_kinds_it_does() -> None:
    with pytest.raises(
        RequestError, match=r"kaizen abort works on: experiment \(experiments, exp, kexp\); got 'lp'"
    ):
        resolve("lp", (experiment.INFO,), "abort")


def exp(status: dict[str, Any] | None = None, paused: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": "coder-0002"}, "spec": {"paused": paused}, "status": status or {}}


def awaiting(reason: str) -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": "Unknown", "reason": reason, "message": "m"}]}


@pytest.mark.parametrize("action", list(Action))
def test_nothing_can_be_asked_of_a_decided_experiment(action: Action) -> None:
    body = exp({"decision": "RollBack", "decisionReason": "worse"})
    said = refusal(action, experiment.INFO, body)
    assert (
        said
        == f"experiment coder-0002 is already decided: RollBack (worse); nothing to {action.value.lower()}"
    )


def test_approve_is_refused_unless_a_winner_awaits_approval() -> None:
    assert refusal(Action.APPROVE, experiment.INFO, exp(awaiting("AwaitingApproval"))) == ""
    said = refusal(Action.APPROVE, experiment.INFO, exp(awaiting("Evaluating")))
    assert said == "nothing awaits approval on experiment coder-0002 (Evaluating: m)"
    assert refusal(Action.APPROVE, experiment.INFO, exp()) == (
        "nothing awaits approval on experiment coder-0002 (no status yet)"
    )


def test_pause_of_a_paused_object_and_resume_of_a_running_one_are_refused() -> None:
    assert "is already paused (resume it with: kaizen resume experiment coder-0002)" in refusal(
        Action.PAUSE, experiment.INFO, exp(paused=True)
    )
    assert refusal(Action.RESUME, experiment.INFO, exp()) == "experiment coder-0002 is not paused"
    assert refusal(Action.PAUSE, learningpolicy.INFO, exp()) == ""
    assert refusal(Action.RESUME, learningpolicy.INFO, exp(paused=True)) == ""


@pytest.mark.parametrize("action", [Action.PROMOTE, Action.ABORT])
def test_promote_and_abort_apply_to_a_running_experiment_even_while_paused(action: Action) -> None:
    assert refusal(action, experiment.INFO, exp(awaiting("Paused"), paused=True)) == ""
