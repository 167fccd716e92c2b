"""What the proxy answers by itself, in OpenAI's shapes: errors, the model list, and the body limit.

``ProxyError`` is any answer the router gives without an upstream (``{"error": {"message", "type",
"param", "code"}}``), ``unknown_route`` the 404 for a route that does not exist, ``model_list`` the
answer to ``GET /openai/<namespace>/<route>/v1/models``, and ``read_body`` reads a request's body
under the proxy's limit (413 past it).

The model list names one model, the route: a route is named after its LearningPolicy, and the
router, not the ``model`` a client sends, picks the variant. Every variant that names a ``model``
(the operator's routes name the ShadowModel's served model) gets that name upstream whatever the
client sent, so the route's name is the id an agent configures once and keeps through promotions
and rollbacks. The variants' own model names are not listed: sending one selects nothing (a client
would believe it chose a model it does not get), and which challengers run is the experiment's
business. A variant without a ``model`` passes the client's on unchanged: on such a route the client
must send a name that variant's server knows, as it would without Kaizen.
"""

from __future__ import annotations

from typing import Any

import orjson

from controllers.gateway.forward import Receive, Send
from controllers.gateway.route_table import ActiveRoute


class ProxyError(Exception):
    """A request the proxy answers itself, in OpenAI's error shape."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


def unknown_route(route: str) -> ProxyError:
    """The 404 for ``<namespace>/<name>``: routes are the operator's, named after LearningPolicies."""
    namespace, name = route.split("/", 1)
    message = (
        f"no route {route!r}. A route is named after its LearningPolicy (send the policy's name as the "
        "model, at /openai/<namespace>/<policy name>/v1) and the Kaizen operator writes it for the policy "
        "once an Experiment serves it (an Experiment without spec.policyRef: under the Experiment's name); "
        f"see kubectl -n {namespace} get learningpolicies,experiments for {name!r}. Routes are not written "
        "by hand: PUT /v1/routes is the operator's API."
    )
    return ProxyError(404, message, "not_found", "route")


def model_list(active: ActiveRoute) -> dict[str, Any]:
    """OpenAI's model list for a route: the route's own name, the one model a client should send."""
    model = {"id": active.config.name, "object": "model", "created": 0, "owned_by": "kaizen"}
    return {"object": "list", "data": [model]}


async def send_json(
    send: Send, status: int, document: dict[str, Any], extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = orjson.dumps(document)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, error: ProxyError, request_id: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    document = {
        "error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.status}
    }
    headers = list(extra)
    if not extra and request_id:
        headers.append((b"x-kaizen-request-id", request_id.encode()))
    if error.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send_json(send, error.status, document, tuple(headers))


async def read_body(receive: Receive, limit: int, declared: str | None) -> bytes:
    """The body; a 413 as soon as ``Content-Length`` or the bytes read so far pass ``limit``."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts, size = [], 0
    while True:
        message = await receive()
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        parts.append(part)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def _too_large(limit: int) -> ProxyError:
    message = f"request body is larger than this gateway's limit of {limit} bytes: send a shorter request "
    message += (
        "(fewer or shorter messages), or ask the gateway's operator to raise KAIZEN_PROXY_MAX_BODY_BYTES"
    )
    return ProxyError(413, message, "invalid_request_error", "body")
