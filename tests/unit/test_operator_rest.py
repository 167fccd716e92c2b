"""Objects at rest: which finished objects the resync loop may look at only now and then, and the
order and pacing of one pass."""

from __future__ import annotations

import dataclasses
from typing import Any

from controllers.api import KINDS, experiment, learningpolicy, shadowmodel, trainingrun
from controllers.api.shadowmodel import STILL_ROUTED
from controllers.operator.app import kinds_for
from controllers.operator.dispatch import Kind
from controllers.operator.resync import forget_deleted, this_pass
from controllers.reconcile.deps import Settings
from controllers.runtime.index import Entry


def obj(uid: str, status: dict[str, Any] | None, generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "generation": generation}, "spec": spec, "status": status}


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_a_finished_run_is_at_rest_unless_its_spec_moved_on() -> None:
    done = {"observedGeneration": 1, "completionTime": "2026-11-22T00:00:00Z"}
    assert trainingrun.at_rest(obj("a", done))
    assert not trainingrun.at_rest(obj("a", done, generation=2))
    assert not trainingrun.at_rest(obj("a", {"observedGeneration": 1}))
    assert not trainingrun.at_rest(obj("a", None))


def test_a_retired_model_rests_only_once_its_deployment_is_gone() -> None:
    def shadow(role: str, reason: str, message: str = "") -> dict[str, Any]:
        return obj(
            "s",
            {"observedGeneration": 1, "role": role, "conditions": [cond("Ready", "False", reason, message)]},
        )

    assert shadowmodel.at_rest(shadow("RolledBack", "RolledBack", "RolledBack: worse than champion"))
    assert shadowmodel.at_rest(shadow("Retired", "Retired"))
    still = f"RolledBack: worse; {STILL_ROUTED} ns/coder still sends traffic to it"
    assert not shadowmodel.at_rest(shadow("RolledBack", "RolledBack", still))
    assert not shadowmodel.at_rest(shadow("RolledBack", "Serving"))  # the role changed; not taken down yet
    assert not shadowmodel.at_rest(shadow("Champion", "Champion"))


def test_an_experiment_rests_once_decided_applied_and_no_longer_watched_for_drift() -> None:
    def decided(
        decision: str, applied: str, drift: str | None = None, strategy: str = "ABTest"
    ) -> dict[str, Any]:
        conditions = [cond("DecisionApplied", applied, "Applied")]
        if drift:
            conditions.append(cond("Drift", "False", drift))
        status = {"observedGeneration": 1, "decision": decision, "conditions": conditions}
        return obj("e", status, strategy=strategy)

    assert experiment.at_rest(decided("RollBack", "True"))
    assert experiment.at_rest(decided("Inconclusive", "True"))
    assert not experiment.at_rest(decided("RollBack", "False"))  # effects not all in place yet
    assert not experiment.at_rest(decided("Continue", "False"))
    assert not experiment.at_rest(decided("Promote", "True", "NoDrift"))  # watching its champion
    assert not experiment.at_rest(decided("Promote", "True", "WaitingForTraffic"))
    assert not experiment.at_rest(decided("Promote", "True", "RollingBack"))
    assert experiment.at_rest(decided("Promote", "True", "Superseded"))
    assert experiment.at_rest(decided("Promote", "True", "Regressed"))
    assert experiment.at_rest(decided("Promote", "True", strategy="Bandit"))  # bandits are not watched
    assert not learningpolicy.at_rest(obj("p", {"observedGeneration": 1}))


async def _noop(*_: Any) -> Any:
    raise AssertionError("not called")


KIND = Kind(
    dataclasses.replace(experiment.INFO, at_rest=lambda raw: bool((raw.get("status") or {}).get("done"))),
    _noop,
    interval=1.0,
    rest_interval=60.0,
)


def _pass(items: list[dict[str, Any]], due: dict[str, float], now: float) -> list[str]:
    entries = [Entry(i["metadata"]["uid"], "ns", i["metadata"]["uid"], KIND.info.at_rest(i)) for i in items]
    batch = this_pass(entries, due, now, KIND.rest_interval)
    forget_deleted(due, {entry.uid for entry in entries})
    return [entry.uid for entry in batch]


def test_a_pass_takes_moving_objects_first_and_resting_ones_once_per_rest_interval() -> None:
    items = [obj("old", {"done": True}), obj("new", {"done": False})]
    due: dict[str, float] = {}
    # First sight: the moving one now; the resting one at a random point of the next minute.
    assert _pass(items, due, now=0.0) == ["new"]
    assert 0.0 <= due["old"] <= 60.0
    first = due["old"]
    assert _pass(items, due, now=first - 0.01) == ["new"]
    assert _pass(items, due, now=first) == ["new", "old"]
    assert due["old"] == first + 60.0
    assert _pass(items, due, now=first + 1) == ["new"]
    # An object that moves again (an edited spec) is looked at every pass; a deleted one is forgotten.
    items[0]["status"]["done"] = False
    assert _pass(items, due, now=first + 2) == ["old", "new"]
    assert "old" not in due
    items[0]["status"]["done"] = True
    _pass(items, due, now=first + 3)
    assert "old" in due
    _pass(items[1:], due, now=first + 4)
    assert "old" not in due


def test_the_operator_runs_each_kind_the_api_declares_with_its_own_facts() -> None:
    settings = Settings(database_url="sqlite://", rest_seconds=90.0)
    running = kinds_for(settings)
    assert [kind.info for kind in running] == [module.INFO for module in KINDS]
    assert {kind.rest_interval for kind in running} == {90.0}
    assert [kind.resource.path("ns") for kind in running] == [
        "/apis/kaizen.dev/v1alpha1/namespaces/ns/learningpolicies",
        "/apis/kaizen.dev/v1alpha1/namespaces/ns/trainingruns",
        "/apis/kaizen.dev/v1alpha1/namespaces/ns/shadowmodels",
        "/apis/kaizen.dev/v1alpha1/namespaces/ns/experiments",
    ]
