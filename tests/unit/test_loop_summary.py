"""What the operator leaves in the store for the loop dashboard, cut from an object's status."""

from __future__ import annotations

from typing import Any

from controllers.decisions.loop_summary import MESSAGE_CHARS, summarize


def obj(name: str, spec: dict[str, Any], uid: str = "u-1") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team", "uid": uid}, "spec": spec}


def condition(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-12-01T10:00:00Z"}  # fmt: skip


RUN_SPEC = {"policyRef": "coder", "trigger": "NewData", "training": {"method": "DPO"}}


def test_a_training_run_is_summarised_with_its_state_and_metrics_under_its_policy() -> None:
    status = {
        "attempts": 1,
        "startTime": "2026-12-01T09:00:00Z",
        "completionTime": "2026-12-01T09:30:00Z",
        "dataset": {"trainRows": 90, "evalRows": 10, "uri": "s3://b/k", "contentHash": "sha256:x"},
        "metrics": {"trainLoss": 0.41, "preferenceAccuracy": 0.8, "steps": 12},
        "shadowModel": "coder-0001",
        "conditions": [
            condition("Succeeded", "True", "Trained"),
            condition("Ready", "True", "Trained", "ok"),
        ],
    }
    found = summarize("TrainingRun", obj("coder-0001", RUN_SPEC), status)
    assert found is not None
    assert (found.kind, found.namespace, found.name, found.uid, found.policy) == (
        "TrainingRun", "team", "coder-0001", "u-1", "coder",
    )  # fmt: skip
    body = found.body
    assert body["state"] == "Succeeded"
    assert body["metrics"] == {"trainLoss": 0.41, "preferenceAccuracy": 0.8, "steps": 12}
    assert (body["trainRows"], body["evalRows"], body["shadowModel"]) == (90, 10, "coder-0001")
    assert (body["trigger"], body["method"]) == ("NewData", "DPO")
    assert "s3://" not in str(body)  # where data lives is not the page's


def test_a_run_is_pending_then_running_then_failed_by_its_own_conditions() -> None:
    def state(status: dict[str, Any]) -> str:
        found = summarize("TrainingRun", obj("r", RUN_SPEC), status)
        assert found is not None
        return str(found.body["state"])

    assert state({}) == "Pending"
    assert state({"attempts": 2}) == "Running"
    failing = {"attempts": 2, "conditions": [condition("Succeeded", "False", "JobFailed")]}
    assert state(failing) == "Running"  # retries are left: not failed for good
    assert state({**failing, "completionTime": "2026-12-01T09:30:00Z"}) == "Failed"


def test_a_run_made_by_hand_and_other_kinds_are_not_summarised() -> None:
    assert summarize("TrainingRun", obj("r", {"training": {}}), {"attempts": 1}) is None
    assert summarize("ShadowModel", obj("s", {"policyRef": "coder"}), {}) is None


def test_an_experiment_carries_its_decision_drift_watch_and_the_reports_inputs() -> None:
    spec = {
        "policyRef": "coder",
        "rollout": {"alpha": 0.01, "minDetectableEffect": 0.1},
        "variants": [{"name": "base", "role": "Champion"}, {"name": "new", "role": "Challenger"}],
    }
    long = "x" * 5000
    status = {
        "decision": "Promote",
        "decisionReason": long,
        "decidedAt": "2026-12-01T11:00:00Z",
        "variants": [
            {
                "name": "new",
                "weight": 100,
                "samples": 80,
                "meanReward": 0.8,
                "confidenceLower": 0.1,
                "confidenceUpper": 0.5,
                "pValue": 0.001,
                "latencyP95Ms": 12.0,
            }
        ],
        "conditions": [condition("Drift", "False", "NoDrift", "watching 40 rewards")],
    }
    found = summarize("Experiment", obj("coder-0001", spec), status)
    assert found is not None
    assert found.policy == "coder"
    body = found.body
    assert (body["decision"], body["decidedAt"]) == ("Promote", "2026-12-01T11:00:00Z")
    assert len(body["reason"]) == MESSAGE_CHARS
    assert (body["champion"], body["alpha"], body["minDetectableEffect"]) == ("base", 0.01, 0.1)
    assert body["variants"][0]["meanReward"] == 0.8
    assert "latencyP95Ms" not in body["variants"][0]
    assert body["drift"] == {
        "stage": "NoDrift",
        "message": "watching 40 rewards",
        "since": "2026-12-01T10:00:00Z",
    }


def test_a_hand_made_experiment_belongs_to_its_own_route_and_starts_as_continue() -> None:
    found = summarize("Experiment", obj("adhoc", {"variants": []}), {})
    assert found is not None
    assert found.policy == "adhoc"
    assert (found.body["decision"], found.body["drift"], found.body["champion"]) == ("Continue", None, None)


def test_a_policy_keeps_its_champion_and_lineage_with_the_run_behind_each() -> None:
    status = {
        "champion": {"shadowModel": "coder-0002", "since": "2026-12-02T00:00:00Z"},
        "lastTrainingRun": "coder-0003",
        "lineage": [
            {"shadowModel": "coder-0002", "trainingRun": "coder-0002", "promotedAt": "2026-12-02T00:00:00Z"},
            {
                "shadowModel": "coder-0001",
                "trainingRun": "coder-0001",
                "promotedAt": "2026-12-01T00:00:00Z",
                "retiredAt": "2026-12-02T00:00:00Z",
                "reason": "superseded",
            },
        ],
    }
    found = summarize("LearningPolicy", obj("coder", {"track": {"agent": "coder"}}), status)
    assert found is not None
    assert found.policy == "coder"
    assert found.body["champion"] == "coder-0002"
    assert [e["trainingRun"] for e in found.body["lineage"]] == ["coder-0002", "coder-0001"]
    assert found.body["lineage"][1]["reason"] == "superseded"


def test_the_digest_changes_exactly_when_what_the_page_shows_changes() -> None:
    first = summarize("TrainingRun", obj("r", RUN_SPEC), {"attempts": 1})
    same = summarize("TrainingRun", obj("r", RUN_SPEC), {"attempts": 1, "submissionId": "other"})
    later = summarize("TrainingRun", obj("r", RUN_SPEC), {"attempts": 2})
    assert first is not None
    assert same is not None
    assert later is not None
    assert first.digest == same.digest  # a field the page does not show
    assert first.digest != later.digest
