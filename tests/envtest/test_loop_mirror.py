"""The operator's summaries for the loop dashboard, against a real API server: ``dispatch.handle``
leaves the summary in the store before it writes the status, writes it again only when it changes,
and the resync loops' prune drops it once the object is gone (and not before the grace)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from controllers.api import trainingrun
from controllers.operator.app import kinds_for
from controllers.operator.dispatch import handle
from controllers.reconcile import loop_mirror
from controllers.store import loop_objects
from controllers.store.db import transaction
from controllers.store.loop_objects import PRUNE_GRACE
from devstack.controlplane import ControlPlane
from tests.envtest.test_missing_policy import _apply_run, _training
from tests.envtest.test_policy_mining import close, operator_for


def shown(factory: sessionmaker[Session], namespace: str) -> list[loop_objects.Mirrored]:
    with transaction(factory) as session:
        return loop_objects.of_policy(session, namespace, "nope", trainingrun.KIND)


def test_a_runs_summary_follows_its_status_and_goes_with_it(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    body = _apply_run(
        control_plane, namespace, "waiting", {"policyRef": "nope", "training": _training(tmp_path)}
    )
    uid = body["metadata"]["uid"]

    seen: dict[str, list[loop_objects.Mirrored]] = {}

    async def reconcile_then_delete_then_prune() -> set[tuple[str, str]]:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        kind = next(k for k in kinds_for(operator.deps.settings) if k.name == trainingrun.KIND)
        try:
            await handle(kind, body, operator.deps)
            seen["first"] = shown(factory, namespace)
            written = set(operator.deps.mirror.written)
            await handle(kind, body, operator.deps)  # nothing changed: nothing written
            seen["again"] = shown(factory, namespace)
            control_plane.kubectl("delete", "trainingrun", "waiting", "-n", namespace)
            await loop_mirror.prune(kind.name, set(), [namespace], operator.deps, now=0.0)
            seen["within grace"] = shown(factory, namespace)
            later = datetime.now(UTC) + PRUNE_GRACE * 2
            deps = dataclasses.replace(operator.deps, clock=lambda: later)
            await loop_mirror.prune(kind.name, set(), [namespace], deps, now=1.0)  # within the minute
            seen["rate limited"] = shown(factory, namespace)
            await loop_mirror.prune(kind.name, set(), [namespace], deps, now=loop_mirror.PRUNE_EVERY + 1)
            seen["pruned"] = shown(factory, namespace)
            return written
        finally:
            await close(operator)

    written = asyncio.run(reconcile_then_delete_then_prune())
    # The summary is there, saying what the status says: waiting for its policy
    (summary,) = seen["first"]
    assert summary.name == "waiting"
    assert summary.summary["state"] == "Pending"
    assert summary.summary["ready"]["reason"] == "PolicyNotFound"
    assert written == {(trainingrun.KIND, uid)}
    assert seen["again"] == seen["first"]  # the same row, not rewritten (updated_at unchanged)
    # Deleted: kept through the grace (the index may lag a new object), then pruned at the next prune
    assert seen["within grace"] == seen["first"]
    assert seen["rate limited"] == seen["first"]
    assert seen["pruned"] == []
