"""Writing a person's intervention (controllers.api.intervention) and waiting for the operator's answer.

Every on-call command (``kaizen promote|abort|approve|pause|resume|retry|train``) goes through ``ask``:
it refuses while an earlier request on the same object is still unanswered (a second write would
replace the first before the operator saw it), writes the request (and, for pause/resume, the
``spec.paused`` switch) in one merge patch, and waits until the object's status records it.

Synchronous, on the ``kubernetes`` package with the operator's own credential loading (the pod's
ServiceAccount, else the kubeconfig), like ``kubectl``.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controllers.api.intervention import (
    ANNOTATION,
    Action,
    Intervention,
    annotation_value,
    pending,
)
from controllers.api.kindinfo import Resource

WAIT_SECONDS = 30.0


class RequestError(RuntimeError):
    """Why a request was not written (a sentence that says what to do next)."""


@dataclass(frozen=True)
class Answer:
    request: Intervention
    outcome: str  # "" when the operator had not answered within the wait


def current_user() -> str:
    """Who asks: the kubeconfig's current user, else the pod's ServiceAccount (self-reported; the API
    server's audit log has the authenticated name of whoever wrote the annotation)."""
    from kubernetes import config as kube_config

    try:
        # $KUBECONFIG read now, as load_configuration does: the package read it once, at import.
        config_file = os.environ.get("KUBECONFIG") or None
        _, active = kube_config.list_kube_config_contexts(config_file)  # type: ignore[no-untyped-call]
        return str(active["context"].get("user") or active["name"])[:253]
    except (kube_config.ConfigException, KeyError, TypeError, OSError):
        return "system:serviceaccount (in-cluster)"


def new_request(action: Action, reason: str, by: str, now: datetime | None = None) -> Intervention:
    stamp = (now or datetime.now(UTC)).replace(microsecond=0)
    ident = f"{action.value.lower()}-{stamp.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    return Intervention(id=ident, action=action, by=by, at=stamp, reason=reason[:512])


def _objects() -> Any:
    from kubernetes.client import CustomObjectsApi

    from controllers.cli.kubeapi import api_client

    return CustomObjectsApi(api_client())


def read(resource: Resource, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException

    try:
        body: dict[str, Any] = _objects().get_namespaced_custom_object(
            resource.group, resource.version, namespace, resource.plural, name
        )
    except ApiException as error:
        if error.status == 404:
            raise RequestError(
                f"{resource.plural}/{name} not found in namespace {namespace}"
                f" (list them with: kaizen get {resource.plural} -n {namespace})"
            ) from error
        raise RequestError(
            f"the API server refused to read {resource.plural}/{name}: {error.reason}"
        ) from error
    return body


def ask(
    resource: Resource,
    namespace: str,
    name: str,
    request: Intervention,
    *,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    check: Callable[[dict[str, Any]], str] | None = None,
    wait: float = WAIT_SECONDS,
) -> Answer:
    """Write ``request`` on the object (with ``spec`` merged into its spec, and ``annotations`` beside
    the request's, e.g. ``kaizen.dev/train-now``) and wait for the outcome.

    ``check`` returns why the request makes no sense for the object as it is ("" when it does), so
    the person hears it now instead of reading a declined outcome later."""
    from kubernetes.client.exceptions import ApiException

    body = read(resource, namespace, name)
    history = [Intervention.model_validate(e) for e in (body.get("status") or {}).get("interventions") or []]
    if (waiting := pending(body["metadata"], history)) is not None:
        raise RequestError(
            f"{waiting.action.value} asked by {waiting.by or 'someone'} at {waiting.at.isoformat()} is not"
            f" answered yet; wait for it (kaizen describe {resource.plural} {name} -n {namespace})"
        )
    if check is not None and (refusal := check(body)):
        raise RequestError(refusal)
    patch: dict[str, Any] = {
        "metadata": {"annotations": {**(annotations or {}), ANNOTATION: annotation_value(request)}}
    }
    if spec:
        patch["spec"] = spec
    try:
        _objects().patch_namespaced_custom_object(
            resource.group, resource.version, namespace, resource.plural, name, patch
        )
    except ApiException as error:
        raise RequestError(
            f"the API server refused the request ({error.status} {error.reason}); check"
            f" `kubectl auth can-i patch {resource.plural}.{resource.group} -n {namespace}`"
        ) from error
    return Answer(request, _await(resource, namespace, name, request.id, wait))


def _await(resource: Resource, namespace: str, name: str, ident: str, wait: float) -> str:
    deadline = time.monotonic() + wait
    while True:
        status = read(resource, namespace, name).get("status") or {}
        for entry in status.get("interventions") or []:
            if entry.get("id") == ident:
                return str(entry.get("outcome") or "done")
        if time.monotonic() >= deadline:
            return ""
        time.sleep(0.25)
