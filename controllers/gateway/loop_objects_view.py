"""The Kubernetes side of a policy's loop, as the operator last summarised it in the store.

TrainingRuns (state, metrics), each Experiment's own decision and drift watch, and the policy's
champion lineage are Kubernetes objects; the operator keeps a summary of each in the store
(``controllers.store.loop_objects``, decided by ``controllers.decisions.loop_summary``) and this
module reads them for ``loop_view``. Each carries ``updatedAt``: when the operator last saw it change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from controllers.api import experiment, learningpolicy, trainingrun
from controllers.api.routes import experiment_key
from controllers.store.loop_objects import Mirrored, of_policy

RUNS_SHOWN = 20  # the newest; every run is one `kubectl kaizen get trainingruns` away


def _entry(found: Mirrored) -> dict[str, Any]:
    return {"name": found.name, **found.summary, "updatedAt": found.updated_at.isoformat()}


def training_runs(session: Session, namespace: str, policy: str) -> list[dict[str, Any]]:
    """The policy's newest TrainingRuns, newest first (names carry a sequence, and a start time)."""
    runs = [_entry(found) for found in of_policy(session, namespace, policy, trainingrun.KIND)]
    runs.sort(key=lambda run: (run.get("startTime") or "", run["name"]), reverse=True)
    return runs[:RUNS_SHOWN]


def experiments(session: Session, namespace: str, policy: str) -> dict[str, dict[str, Any]]:
    """The policy's Experiments by experiment key (``namespace/name``, the key the route records)."""
    return {
        experiment_key(namespace, found.name): _entry(found)
        for found in of_policy(session, namespace, policy, experiment.KIND)
    }


def policy_status(session: Session, namespace: str, policy: str) -> dict[str, Any] | None:
    found = [f for f in of_policy(session, namespace, policy, learningpolicy.KIND) if f.name == policy]
    return _entry(found[0]) if found else None
