"""A TrainingRun's data is its namespace's, and its policy's: a run naming a LearningPolicy that does
not exist reads nothing at all (and ends once the grace for the policy to appear is over), and a
hand-made run without a policy reads only its own namespace."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.trainingrun import TrainingRun, TrainingRunStatus
from controllers.decisions.runplan import POLICY_GRACE
from controllers.reconcile import runs
from controllers.reconcile.outcome import Outcome
from controllers.store import ingest
from controllers.store.db import transaction
from controllers.store.models import DatasetSnapshot
from devstack.controlplane import ControlPlane
from tests.envtest.test_policy_mining import close, condition, operator_for


def _pairs(factory: sessionmaker[Session], namespace: str, count: int) -> None:
    rows = [
        {
            "prompt": f"{namespace} task {i}",
            "chosen": "good",
            "rejected": "bad",
            "agent": "coder",
            "source": "explicit",
            "created_at": datetime.now(UTC),
        }
        for i in range(count)
    ]
    with transaction(factory) as session:
        ingest.insert_pairs(session, rows, namespace)


def _apply_run(plane: ControlPlane, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": spec,
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    return dict(json.loads(plane.kubectl("get", "trainingrun", name, "-n", namespace, "-o", "json").stdout))


TRAINING = {"method": "DPO", "baseModel": {"name": "tiny", "uri": "file:///models/tiny"}}


def _training(output: Path) -> dict[str, Any]:
    """The run's outputs in a local folder (a file:// outputUri, as on a shared volume)."""
    return {**TRAINING, "outputUri": output.as_uri()}


def test_a_run_whose_policy_does_not_exist_reads_nothing(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    # Given trainable pairs in the run's namespace and another, and a run naming a policy nobody made
    _pairs(factory, namespace, 5)
    _pairs(factory, "elsewhere", 5)
    body = _apply_run(
        control_plane, namespace, "orphan", {"policyRef": "nope", "training": _training(tmp_path / "out")}
    )

    created = datetime.fromisoformat(body["metadata"]["creationTimestamp"].replace("Z", "+00:00"))

    async def reconcile() -> Any:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            passes, current = [], body
            # twice within the grace, then at its end, then after it
            for at in (
                created,
                created + timedelta(minutes=1),
                created + POLICY_GRACE,
                created + 2 * POLICY_GRACE,
            ):
                deps = dataclasses.replace(operator.deps, clock=lambda at=at: at)
                done = await runs.reconcile(current, TrainingRun.model_validate(current), deps)
                passes.append(done)
                current = {**current, "status": done.status.to_wire()}
            return passes
        finally:
            await close(operator)

    first, second, ended, after = asyncio.run(reconcile())
    # Then it is not Ready, saying which field is wrong, and it exported nothing
    status = first.status.to_wire()
    ready = condition(status, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "PolicyNotFound"
    assert "spec.policyRef" in ready["message"]
    assert "nope" in ready["message"]
    assert "dataset" not in status
    assert "completionTime" not in status  # it waits: the policy may yet be created
    assert f"this run ends at {created + POLICY_GRACE:%Y-%m-%dT%H:%M:%SZ}" in ready["message"]
    assert not (tmp_path / "out").exists()
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(DatasetSnapshot)) == 0
    # one Warning, not one per reconcile
    assert [e[1] for e in first.events] == ["PolicyNotFound"]
    assert second.events == []
    # Then, the grace over, it ends having read nothing: one more Warning, and nothing after
    final = ended.status.to_wire()
    assert final["completionTime"]
    assert (condition(final, "Ready")["reason"], condition(final, "Succeeded")["status"]) == (
        "PolicyNotFound",
        "False",
    )
    assert "it ended. Create the policy, then a new run" in condition(final, "Ready")["message"]
    assert [(e[0], e[1]) for e in ended.events] == [("Warning", "PolicyNotFound")]
    assert after.events == []
    assert after.status.to_wire()["completionTime"] == final["completionTime"]
    assert "dataset" not in final
    assert not (tmp_path / "out").exists()


def test_a_run_without_a_policy_reads_only_its_own_namespace(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    _pairs(factory, namespace, 3)
    _pairs(factory, "elsewhere", 7)
    body = _apply_run(control_plane, namespace, "by-hand", {"training": _training(tmp_path / "out")})
    run = TrainingRun.model_validate(body)

    async def snapshot() -> Outcome[TrainingRunStatus]:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            out = Outcome.start(run.status, TrainingRunStatus(), body["metadata"])
            assert await runs.snapshot(run, body["metadata"], out, operator.deps, datetime.now(UTC)) is None
            return out
        finally:
            await close(operator)

    dataset = asyncio.run(snapshot()).status.dataset
    assert dataset is not None
    assert dataset.train_rows + dataset.eval_rows == 3
    assert dataset.uri == (tmp_path / "out" / "by-hand" / "dataset").as_uri()
    assert (tmp_path / "out" / "by-hand" / "dataset" / "snapshot.json").is_file()
