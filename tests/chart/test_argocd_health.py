"""The Argo CD health script, run in a real Lua 5.1 interpreter (Argo CD's gopher-lua speaks 5.1).

Argo CD runs the script with the live object bound to the global ``obj`` and takes the table it
returns; ``assess`` does the same. Fixtures cover every kind: Healthy, Progressing (no status yet, a
stale observedGeneration, Ready Unknown), Degraded (Ready False with its reason), and how a rollback
looks once it is settled (Healthy: history) and while it is carried out (Progressing).
"""

from __future__ import annotations

import copy
from typing import Any

import lupa.lua51 as lua51
import pytest

from controllers.api import KINDS
from tests.chart.chart import CHART_DIR

SCRIPT = (CHART_DIR / "argocd" / "health.lua").read_text()
KIND_NAMES = [module.KIND for module in KINDS]
NOW = "2026-01-01T00:00:00Z"


def assess(obj: dict[str, Any]) -> dict[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(SCRIPT)
    return {"status": result["status"], "message": result["message"]}


def condition(type_: str, status: str, reason: str, message: str = "", generation: int = 3) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": NOW,
        "observedGeneration": generation,
    }


def kaizen_object(kind: str, *, generation: int = 3, status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "coder-dpo", "namespace": "team-a", "generation": generation},
        "spec": {},
    }
    if status is not None:
        obj["status"] = status
    return obj


def ready(status: str, reason: str, message: str = "", generation: int = 3) -> dict[str, Any]:
    return {"observedGeneration": 3, "conditions": [condition("Ready", status, reason, message, generation)]}


def test_the_script_is_lua_5_1() -> None:
    assert lua51.LuaRuntime().eval("_VERSION") == "Lua 5.1"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_ready_true_is_healthy(kind: str) -> None:
    health = assess(kaizen_object(kind, status=ready("True", "Succeeded", "Everything is in place.")))
    assert health == {"status": "Healthy", "message": "Succeeded: Everything is in place."}


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_no_status_yet_is_progressing(kind: str) -> None:
    health = assess(kaizen_object(kind))
    assert health == {
        "status": "Progressing",
        "message": f"Waiting for the Kaizen operator to act on this {kind}",
    }


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_stale_observed_generation_is_progressing_even_when_ready(kind: str) -> None:
    status = ready("True", "Succeeded")
    status["observedGeneration"] = 2
    health = assess(kaizen_object(kind, generation=3, status=status))
    assert health["status"] == "Progressing"
    assert health["message"] == "Waiting for the Kaizen operator to observe generation 3 (it has acted on 2)"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_ready_condition_from_an_older_generation_is_progressing(kind: str) -> None:
    health = assess(kaizen_object(kind, status=ready("True", "Succeeded", generation=2)))
    assert health == {"status": "Progressing", "message": "Ready describes generation 2, not the latest 3"}


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_ready_unknown_or_missing_is_progressing(kind: str) -> None:
    unknown = assess(kaizen_object(kind, status=ready("Unknown", "Training", "Attempt 1 is running.")))
    assert unknown == {"status": "Progressing", "message": "Training: Attempt 1 is running."}
    missing = assess(kaizen_object(kind, status={"observedGeneration": 3, "conditions": []}))
    assert missing == {"status": "Progressing", "message": "Waiting for the Ready condition"}


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_ready_false_is_degraded_with_its_reason(kind: str) -> None:
    status = ready("False", "InvalidSpec", "spec.training.lora.rank must be at most 256.")
    health = assess(kaizen_object(kind, status=status))
    assert health == {
        "status": "Degraded",
        "message": "InvalidSpec: spec.training.lora.rank must be at most 256.",
    }


def out_of_service(role: str, ready_reason: str, reason: str) -> dict[str, Any]:
    status = ready("False", ready_reason, f"{role}: {reason}")
    status.update(role=role, roleReason=reason)
    return kaizen_object("ShadowModel", status=status)


def test_a_settled_rollback_is_healthy_history_with_its_reason() -> None:
    # The rollback was the fix: traffic is on the champion and nothing is left for a person to do.
    # Degraded would hold the whole Application Degraded for good and hide the next real fault.
    reason = "rolled back by experiment coder-0007: guardrail error_rate breached"
    assert assess(out_of_service("RolledBack", "RolledBack", reason)) == {
        "status": "Healthy",
        "message": f"Rolled back: {reason}",
    }


def test_a_rollback_not_yet_carried_out_is_progressing() -> None:
    # The experiment gave the role; the operator has not yet taken the model out of service.
    status = ready("True", "Serving", "Challenger served by coder-0007")
    status.update(role="RolledBack", roleReason="worse than champion")
    health = assess(kaizen_object("ShadowModel", status=status))
    assert health == {
        "status": "Progressing",
        "message": "Rolled back, being taken out of service: worse than champion",
    }


def test_retired_shadow_model_is_healthy() -> None:
    assert assess(out_of_service("Retired", "Retired", "Replaced by coder-dpo-v8")) == {
        "status": "Healthy",
        "message": "Retired: Replaced by coder-dpo-v8",
    }


def test_an_experiment_that_rolled_back_is_healthy() -> None:
    said = "coder-0007 reward 0.41 vs champion 0.52 (difference -0.11): worse than champion, rolled back"
    health = assess(kaizen_object("Experiment", status=ready("True", "RolledBack", said)))
    assert health == {"status": "Healthy", "message": f"RolledBack: {said}"}


def test_an_experiment_whose_champion_drifted_says_so_and_is_healthy_once_rolled_back() -> None:
    status = ready("True", "Promoted", "coder-0007 better than champion, promoted")
    status["conditions"].append(condition("Drift", "True", "RollingBack", "the champion regressed"))
    rolling = assess(kaizen_object("Experiment", status=status))
    assert rolling == {"status": "Progressing", "message": "RollingBack: the champion regressed"}
    status["conditions"][-1] = condition("Drift", "True", "Regressed", "rolled back to coder-0006")
    assert assess(kaizen_object("Experiment", status=status)) == {
        "status": "Healthy",
        "message": "Regressed: rolled back to coder-0006",
    }


def test_an_experiment_that_gave_up_on_a_missing_model_is_degraded() -> None:
    said = "spec.variants[1].shadowModel: no ShadowModel 'coder-0009'; still so after maxDuration 72h"
    status = ready("False", "ShadowModelNotFound", said)
    status["decision"] = "Inconclusive"
    health = assess(kaizen_object("Experiment", status=status))
    assert health == {"status": "Degraded", "message": f"ShadowModelNotFound: {said}"}


def test_paused_experiment_is_suspended() -> None:
    experiment = kaizen_object("Experiment", status=ready("True", "Running"))
    experiment["spec"]["paused"] = True
    assert assess(experiment)["status"] == "Suspended"


def test_the_script_does_not_modify_the_object() -> None:
    obj = kaizen_object("ShadowModel", status=ready("False", "Failed", "x"))
    before = copy.deepcopy(obj)
    assess(obj)
    assert obj == before
