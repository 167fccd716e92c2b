"""A person's request on an object whose spec the operator refuses is answered, not left pending.

Nothing is done for an invalid spec, and the request must say so at once: left unanswered, the CLI
would wait in vain, the next request would be refused as "not answered yet", and the object would never
be at rest for the resync loop.
"""

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
from controllers.api.kindinfo import status_is_current
from controllers.operator.app import kinds_for
from controllers.operator.dispatch import handle
from devstack.controlplane import ControlPlane
from tests.envtest.test_policy_mining import close, operator_for


def _experiment(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    out = plane.kubectl("get", "experiment", "both", "-n", namespace, "-o", "json").stdout
    return dict(json.loads(out))


def test_a_request_on_an_invalid_experiment_is_declined_once_naming_the_problem(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    # Given an Experiment whose challenger names a model AND an endpoint (a CEL rule a v1.20 API server
    # cannot check, so the operator does), and an Abort a person asked for
    request = Intervention(id="abort-1", action=Action.ABORT, by="bob", at=datetime(2026, 12, 5, tzinfo=UTC))
    body = {
        "apiVersion": kinds.API_VERSION,
        "kind": "Experiment",
        "metadata": {"name": "both", "annotations": {ANNOTATION: annotation_value(request)}},
        "spec": {
            "variants": [
                {"name": "champion", "role": "Champion", "endpoint": "http://base.team-a.svc/v1"},
                {"name": "new", "shadowModel": "m", "endpoint": "http://m.team-a.svc/v1"},
            ]
        },
    }
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))

    async def twice() -> None:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        kind = next(k for k in kinds_for(operator.deps.settings) if k.name == "Experiment")
        try:
            for _ in range(2):
                await handle(kind, _experiment(control_plane, namespace), operator.deps)
        finally:
            await close(operator)

    # When the operator reconciles it (twice: a repeat must not answer again)
    asyncio.run(twice())
    # Then the request is recorded once, declined with the problem named, and the object can rest
    stored = _experiment(control_plane, namespace)
    records = stored["status"]["interventions"]
    assert [(r["id"], r["action"]) for r in records] == [("abort-1", "Abort")]
    assert records[0]["outcome"].startswith("declined: the spec is invalid (")
    assert "shadowModel or endpoint" in records[0]["outcome"]
    ready = next(c for c in stored["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert status_is_current(stored)
    # and one Warning Event says who asked and that nothing was done
    events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    declined = [e for e in events if e["reason"] == "InterventionDeclined"]
    assert len(declined) == 1, declined
    assert declined[0]["count"] == 1, declined
    assert declined[0]["message"].startswith("Abort asked by bob: declined: the spec is invalid")
