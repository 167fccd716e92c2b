"""Kopf handlers: the only module that imports kopf (import-linter keeps it so).

Every kind is reconciled the same way, level-triggered: on create and on spec change (Kopf's change
handlers, here), and by a resync loop per kind (controllers.operator.resync) for what changes outside
Kubernetes; both call controllers.operator.dispatch.handle. There is no resume handler: at start-up the
resync loops' first pass already looks at every moving object, and Kopf resuming each of hundreds of
finished ones as well made every restart cost more the longer a namespace had run. Kaizen needs no
finalizer: everything it makes is owner-referenced.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import kopf
from sqlalchemy.exc import OperationalError

from controllers.api import intervention, kinds
from controllers.operator.dispatch import Kind, handle
from controllers.reconcile.deps import Dependencies
from controllers.runtime.kube import KubeError, load_configuration

# At most this many objects are handled at once by Kopf (see ``configure``).
WORKER_LIMIT = 32


def plain(body: kopf.Body) -> dict[str, Any]:
    raw: dict[str, Any] = dict(body)
    raw["metadata"] = dict(body.metadata)
    raw["spec"] = dict(body.spec)
    raw["status"] = dict(body.status) if body.status else None
    return raw


def register(registry: kopf.OperatorRegistry, kind: Kind) -> None:
    """Create and update handlers for one kind, both leading to ``handle``."""
    group, version, plural = kind.resource.group, kind.resource.version, kind.resource.plural

    async def on_change(body: kopf.Body, memo: Any, old: Any = None, **_: Any) -> None:
        old_spec = dict(old.get("spec") or {}) if isinstance(old, dict) else None
        raw = plain(body)
        try:
            async with memo.deps.urgency.urgent():
                await handle(kind, raw, memo.deps, old_spec)
        except (KubeError, OSError, httpx.HTTPError, OperationalError) as error:
            # The API server, the store or the router is away for a moment (a restart, a network
            # blip): a one-line retry soon, not a traceback and Kopf's default minute of waiting.
            # A refusal (403, 422, ...) will not pass by itself: retry it only every minute.
            refused = (
                isinstance(error, KubeError) and 400 <= error.status < 500 and error.status not in (409, 429)
            )
            raise kopf.TemporaryError(
                f"{type(error).__name__}: {error}", delay=60 if refused else 5
            ) from error

    kopf.on.create(group, version, plural, registry=registry, id=f"reconcile-{plural}")(on_change)
    kopf.on.update(group, version, plural, registry=registry, id=f"reconcile-{plural}", field="spec")(
        on_change
    )
    # A person's request (controllers.api.intervention) or train-now trigger is acted on at once, not
    # at the next resync; the reconcile itself decides whether it is new.
    for key in (intervention.ANNOTATION, kinds.TRAIN_NOW):
        handler_id = f"{key.removeprefix(kinds.GROUP + '/')}-{plural}"  # no "/": it names an annotation
        field = ("metadata", "annotations", key)
        kopf.on.update(group, version, plural, registry=registry, id=handler_id, field=field)(on_change)


def build_registry(kinds_: list[Kind], kubeconfig: str | None = None) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    for kind in kinds_:
        register(registry, kind)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        # A private registry has none of Kopf's default handlers: log in with the same credentials as
        # the operator's own client (the pod's service account in a cluster, else the kubeconfig).
        config = load_configuration(kubeconfig)
        token = config.api_key.get("authorization") or config.api_key.get("BearerToken") or None
        return kopf.ConnectionInfo(
            server=config.host,
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            scheme="Bearer" if token else None,
            token=token.removeprefix("Bearer ") if token else None,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
        )

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=kinds.GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=kinds.GROUP, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{kinds.GROUP}/cleanup"
        settings.peering.standalone = True
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 300
        settings.watching.connect_timeout = 10
        settings.networking.request_timeout = 30
        settings.queueing.error_delays = (1, 2, 5, 10, 20)
        # Bounded concurrency, so that memory does not follow the number of objects: at most this
        # many objects are handled at once (the others' events wait in their queues, a few KB each),
        # and an object's worker, with its last event, goes soon after it has nothing to do.
        settings.queueing.worker_limit = WORKER_LIMIT
        settings.queueing.idle_timeout = 1.0

    return registry


@dataclass
class Memo:
    deps: Dependencies


async def operate(
    kinds_: list[Kind], deps: Dependencies, namespaces: list[str], kubeconfig: str | None, halt: asyncio.Event
) -> None:
    """Run Kopf's watches and change handlers for ``kinds_`` until ``halt`` is set."""
    await kopf.operator(
        registry=build_registry(kinds_, kubeconfig),
        memo=Memo(deps),
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True,
        stop_flag=halt,
    )
