"""Kubernetes Events for the operator's decisions, posted with its own client.

Kopf's ``kopf.event`` only works inside a Kopf handler; the resync loops run outside one, and every
decision deserves its Event wherever it was made. core/v1 Events are what ``kubectl describe`` shows.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from typing import Any

from controllers.runtime.kube import Kube, KubeError, Resource

EVENTS = Resource("", "v1", "events")
COMPONENT = "kaizen-operator"


def event_body(
    obj: dict[str, Any], event_type: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    meta = obj["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hashlib.sha256(f"{meta.get('uid')}{reason}{message}{now.timestamp()}".encode()).hexdigest()[:10]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{digest}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post(
    kube: Kube, obj: dict[str, Any], event_type: str, reason: str, message: str, key: str | None = None
) -> None:
    """Best effort: an Event that cannot be posted must not fail the reconcile that decided.

    With ``key`` (a request's id) the Event's name is the object's and the key's, so posting it again
    (a pass killed after the Event and before its status write, then repeated) adds nothing."""
    body = event_body(obj, event_type, reason, message, datetime.now(UTC))
    if key is not None:
        body["metadata"]["name"] = f"{obj['metadata']['name'][:180]}.{key}"
    with contextlib.suppress(KubeError, OSError):
        await kube.ensure(EVENTS, body)
