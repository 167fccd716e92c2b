"""What the on-call e2e tests (test_interventions, test_interventions_training) share: killing the
operator as a person's request lands, and reading back the one answer and the one Event it got."""

from __future__ import annotations

import json
from typing import Any

from controllers.api.intervention import ANNOTATION
from tests.e2e.conftest import World


def request_on(world: World, kind: str, name: str) -> str | None:
    """The request the CLI wrote on the object (the annotation's raw value), if any."""
    meta = (world.get(kind, name) or {}).get("metadata") or {}
    return (meta.get("annotations") or {}).get(ANNOTATION)


def kill_once_it_lands(world: World, kind: str, name: str, before: str | None) -> None:
    """SIGKILL the operator as soon as a request other than ``before`` is on the object (it may be
    answering it right then), and start it again."""
    world.wait_until(
        f"the request on {kind}/{name}",
        lambda: request_on(world, kind, name) not in (None, before),
        timeout=30,
    )
    world.operator.kill()
    world.operator.start()


def the_answer(world: World, kind: str, name: str, action: str, timeout: float = 60.0) -> dict[str, Any]:
    """The record of the request now on the object, once the operator has answered it: exactly one."""
    ident = json.loads(request_on(world, kind, name) or "{}")["id"]

    def records() -> list[dict[str, Any]]:
        history = ((world.get(kind, name) or {}).get("status") or {}).get("interventions") or []
        return [r for r in history if r["id"] == ident]

    found = world.wait_until(f"the answer to {ident}", records, timeout=timeout)
    assert len(found) == 1, found
    assert found[0]["action"] == action
    return found[0]


def events(world: World, name: str, reason: str) -> list[dict[str, Any]]:
    """The namespace's Events about ``name`` with ``reason``."""
    listed = json.loads(world.kubectl("get", "events", "-o", "json"))["items"]
    return [e for e in listed if e["reason"] == reason and e["involvedObject"]["name"] == name]
