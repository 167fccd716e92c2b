"""A person's Retry and Train against a real API server, with the operator killed at the worst moment:
after it acted (submitted the attempt, created the run) and before it wrote the status that records
the request. A pass whose outcome is thrown away is exactly that kill; the next pass must find what
the first made under its deterministic name and record the request once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from controllers.api import kinds
from controllers.api.intervention import ANNOTATION, Action, Intervention, annotation_value
from controllers.api.learningpolicy import LearningPolicy
from controllers.api.trainingrun import TrainingRun
from controllers.operator import dispatch
from controllers.reconcile import policies, runs
from devstack.controlplane import ControlPlane
from devstack.upstream_crds import RAYJOB, minimal_crd
from tests.envtest.test_policy_mining import close, operator_for

TRAINING = {"method": "DPO", "baseModel": {"name": "tiny", "uri": "file:///models/tiny"}}
NOW = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)


def _request(action: Action, ident: str) -> str:
    return annotation_value(Intervention(id=ident, action=action, by="alice", at=NOW, reason="node drained"))


def _get(plane: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(plane.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout))


def _names(plane: ControlPlane, namespace: str, kind: str) -> list[str]:
    items = json.loads(plane.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
    return sorted(item["metadata"]["name"] for item in items)


def _failed_run(plane: ControlPlane, namespace: str, name: str) -> None:
    """A hand-made run whose only attempt failed for good, and a person's Retry on it."""
    body = {"apiVersion": kinds.API_VERSION, "kind": "TrainingRun", "metadata": {"name": name}}
    body["spec"] = {"training": TRAINING, "retry": {"maxAttempts": 1}}
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    stamp = "2026-12-05T21:00:00Z"
    failed = {"status": "False", "reason": "JobFailed", "lastTransitionTime": stamp, "observedGeneration": 1}
    status = {
        "observedGeneration": 1,
        "attempts": 1,
        "submissionId": "kaizen-x-a1-000000000000",
        "dataset": {
            "uri": "file:///d",
            "contentHash": "sha256:" + "c" * 64,
            "watermark": stamp,
            "trainRows": 4,
        },
        "completionTime": stamp,
        "conditions": [
            {**failed, "type": "Ready", "message": "attempt 1 of 1 failed: node lost"},
            {**failed, "type": "Succeeded", "message": "node lost"},
        ],
    }
    patch = json.dumps({"status": status})
    plane.kubectl(
        "patch", "trainingrun", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", patch
    )
    request = json.dumps({"metadata": {"annotations": {ANNOTATION: _request(Action.RETRY, "retry-1")}}})
    plane.kubectl("patch", "trainingrun", name, "-n", namespace, "--type=merge", "-p", request)


def test_a_retry_interrupted_before_its_record_makes_one_job_and_one_record(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    # Given a run that failed for good, and a person's Retry on it
    crd = tmp_path / "rayjobs.json"
    crd.write_text(json.dumps(minimal_crd(RAYJOB)))
    control_plane.install_crds([crd])
    _failed_run(control_plane, namespace, "flaky")

    async def passes() -> list[Any]:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            body = _get(control_plane, namespace, "trainingrun", "flaky")
            # When the operator submits the retry and is killed before writing the status ...
            killed = await runs.reconcile(body, TrainingRun.model_validate(body), operator.deps)
            # ... and the next operator reconciles the run as the API server still has it
            again = await runs.reconcile(body, TrainingRun.model_validate(body), operator.deps)
            after = {**body, "status": again.status.to_wire()}
            settled = await runs.reconcile(after, TrainingRun.model_validate(after), operator.deps)
            return [killed, again, settled]
        finally:
            await close(operator)

    killed, again, settled = asyncio.run(passes())
    # Then both passes granted the same attempt 2, and one RayJob exists for it
    assert killed.status.attempts == again.status.attempts == 2
    assert killed.status.job_name == again.status.job_name
    assert _names(control_plane, namespace, "rayjobs") == [again.status.job_name]
    # and the request is recorded once, with what was done, and the run is running again
    status = settled.status
    assert [(i.id, i.outcome) for i in status.interventions] == [
        ("retry-1", f"attempt 2 submitted ({again.status.submission_id})")
    ]
    assert status.completion_time is None
    assert [c.type for c in status.conditions] == ["Ready"]  # the failed Succeeded is gone
    assert status.conditions[0].message == "attempt 2 of 2 is pending"
    assert ("Normal", "Retry", again.events[-1][2]) in again.events
    assert "Retry asked by alice (node drained): attempt 2 submitted" in again.events[-1][2]
    assert not any(event[1] == "Retry" for event in settled.events)


def test_a_train_request_interrupted_before_its_record_starts_one_run(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    # Given a policy that no data would trigger, and a person's Train request on it (as the CLI writes it)
    policy = {
        "apiVersion": kinds.API_VERSION,
        "kind": "LearningPolicy",
        "metadata": {
            "name": "coder",
            "annotations": {kinds.TRAIN_NOW: "train-1", ANNOTATION: _request(Action.TRAIN, "train-1")},
        },
        "spec": {"track": {"agent": "nobody"}, "trigger": {"minNewPairs": 1_000_000}, "training": TRAINING},
    }
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(policy))

    async def passes() -> list[Any]:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            body = _get(control_plane, namespace, "learningpolicy", "coder")
            # When the operator starts the run and is killed before writing the status
            killed = await policies.reconcile(body, LearningPolicy.model_validate(body), operator.deps)
            await dispatch.post_events(body, killed, operator.deps)  # its Events, as the kill came after them
            fresh = _get(control_plane, namespace, "learningpolicy", "coder")
            again = await policies.reconcile(
                {**fresh, "status": body.get("status")}, LearningPolicy.model_validate(fresh), operator.deps
            )
            await dispatch.post_events(fresh, again, operator.deps)
            return [killed, again]
        finally:
            await close(operator)

    killed, again = asyncio.run(passes())
    # Then one run exists, and the second pass records the request with it
    assert _names(control_plane, namespace, "trainingruns") == ["coder-0001"]
    assert [(i.id, i.outcome) for i in again.status.interventions] == [
        ("train-1", "started TrainingRun coder-0001")
    ]
    assert (
        "Normal",
        "Train",
        "Train asked by alice (node drained): started TrainingRun coder-0001",
    ) in again.events
    # and the answer's Event, posted by both passes, is there once
    listed = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    assert [e["message"] for e in listed if e["reason"] == "Train"] == [
        "Train asked by alice (node drained): started TrainingRun coder-0001"
    ]
    # and the train-now value is gone: nothing is left to start a second run later
    annotations = (
        _get(control_plane, namespace, "learningpolicy", "coder")["metadata"].get("annotations") or {}
    )
    assert kinds.TRAIN_NOW not in annotations
    assert killed.status.last_training_run == "coder-0001"
