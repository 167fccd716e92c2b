"""A reward weight under its old name (``compile``, before it became ``compileOk``) is not dropped
silently. The API server keeps the field (it is still in the schema, only to be refused); a server
with CEL refuses the object outright with the rule's message (tests/unit/test_cel_rules.py), and on
one without CEL, like this v1.20 server, the operator refuses it with the same message: Ready=False
InvalidSpec naming the field and its new name, and a Warning Event.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from controllers.operator.app import kinds_for
from controllers.operator.dispatch import handle
from controllers.store import migrate
from controllers.store.db import make_engine, session_factory
from devstack.controlplane import ControlPlane
from tests.envtest.test_policy_mining import close, operator_for
from tests.schemas import load_examples

MESSAGE = "spec.reward: compile was renamed to compileOk (the run's own signal name): write compileOk"


def test_a_policy_with_an_old_weight_name_is_kept_by_the_server_and_refused_with_the_new_name(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    policy = load_examples()["LearningPolicy"]
    policy["metadata"] = {"name": "coder", "namespace": namespace}
    policy["spec"]["reward"] = {"compile": 0.3, "testsPassed": 0.4}
    control_plane.kubectl("apply", "-f", "-", stdin=json.dumps(policy))
    got = control_plane.kubectl("get", "learningpolicy", "coder", "-n", namespace, "-o", "json")
    stored = json.loads(got.stdout)
    assert stored["spec"]["reward"]["compile"] == 0.3  # not pruned: the operator can see it
    assert stored["spec"]["reward"]["compileOk"] == 0.25  # the new name took its default

    url = f"sqlite:///{tmp_path / 'kaizen.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    operator = operator_for(control_plane, namespace, engine, session_factory(engine), tmp_path)
    kind = next(k for k in kinds_for(operator.deps.settings) if k.name == "LearningPolicy")

    async def reconcile() -> None:
        try:
            await handle(kind, stored, operator.deps)
        finally:
            await close(operator)

    try:
        asyncio.run(reconcile())
    finally:
        engine.dispose()
    got = control_plane.kubectl("get", "learningpolicy", "coder", "-n", namespace, "-o", "json")
    ready = next(c for c in json.loads(got.stdout)["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert MESSAGE in ready["message"]
    events = control_plane.kubectl("get", "events", "-n", namespace, "-o", "json")
    warnings = [e["message"] for e in json.loads(events.stdout)["items"] if e["reason"] == "InvalidSpec"]
    assert len(warnings) == 1
    assert MESSAGE in warnings[0]
