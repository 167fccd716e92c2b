"""The router: an OpenAI-compatible proxy that splits traffic between a route's variants.

``POST /openai/<namespace>/<route>/v1/chat/completions`` (and ``/v1/completions``) with a gateway
bearer token; ``GET .../v1/models`` lists the route's name, the model to send (``proxy_replies``).
Each request's unit (``controllers.decisions.assign``) is hashed to a variant under the route's
current weights; the body goes to that variant's endpoint unchanged (re-serialised only when the
variant names a different ``model``), and the answer comes back byte for byte, streamed chunk by
chunk when the client asked for ``stream``. Responses carry ``X-Kaizen-Request-Id`` (the client's own,
if it sent one), ``X-Kaizen-Variant`` (who served) and ``X-Kaizen-Experiment`` (while one counts it).

``X-Kaizen-Variant: <name>`` on the request pins that variant (for debugging): honoured, recorded as
pinned, left out of the statistics, and never falls back. A challenger that refuses the connection,
times out or answers 5xx before a byte reached the client is replaced by the champion; the client
sees the champion's answer and the assignment row says ``fallback`` with the challenger's error.

A plain ASGI handler, dispatched before FastAPI, because it is on every model call's path: no
dependency injection, no middleware, no JSON re-encoding unless the model changes, no database work.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson

from controllers.decisions import assign
from controllers.decisions.access import Action
from controllers.gateway.forward import Answer, Outcome, Receive, Send, UpstreamFailed, call_variant, relay
from controllers.gateway.identity import Authenticator, AuthUnavailable, Forbidden, Unauthenticated
from controllers.gateway.proxy_replies import (
    ProxyError,
    model_list,
    read_body,
    send_error,
    send_json,
    unknown_route,
)
from controllers.gateway.recorder import Served
from controllers.gateway.route_table import PATHS, ActiveRoute
from controllers.gateway.router_state import RouterState

Scope = MutableMapping[str, Any]

PREFIX = "/openai/"
MODELS = "models"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Proxy:
    def __init__(self, state: RouterState, authenticator: Authenticator) -> None:
        self.state, self.authenticator = state, authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = ""
        try:
            route, path = self._target(scope)
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            await self._authenticate(headers.get("authorization"), route)
            active = self.state.table.get(route)
            if active is None:
                raise unknown_route(route)
            if path == MODELS:
                await send_json(send, 200, model_list(active))
                return
            request_id = headers.get("x-kaizen-request-id") or uuid.uuid4().hex
            if not REQUEST_ID.fullmatch(request_id):
                raise ProxyError(
                    400, "X-Kaizen-Request-Id must be 1-128 of A-Z a-z 0-9 . _ : -", "invalid_request_error"
                )
            body = await read_body(receive, self.state.max_body_bytes, headers.get("content-length"))
            try:
                payload = orjson.loads(body)  # a 100 kB prompt: ~60 us, where json takes ~1 ms
            except orjson.JSONDecodeError as error:
                raise ProxyError(
                    400, f"body is not JSON: {error}", "invalid_request_error", "body"
                ) from error
            if not isinstance(payload, dict):
                raise ProxyError(400, "body must be a JSON object", "invalid_request_error", "body")
            await self._serve(active, path, headers, payload, body, request_id, receive, send)
        except ProxyError as error:
            await send_error(send, error, request_id)

    def _target(self, scope: Scope) -> tuple[str, str]:
        parts = scope["path"][len(PREFIX) :].split("/", 3)
        if len(parts) == 4 and parts[2] == "v1" and parts[3] in (*PATHS, MODELS) and parts[0] and parts[1]:
            method = "GET" if parts[3] == MODELS else "POST"
            if scope["method"] != method:
                raise ProxyError(
                    405, f"{scope['method']} is not allowed; use {method}", "invalid_request_error"
                )
            return f"{parts[0]}/{parts[1]}", parts[3]
        raise ProxyError(
            404,
            f"unknown path {scope['path']!r}; use POST /openai/<namespace>/<route>/v1/chat/completions "
            "or /v1/completions, or GET /openai/<namespace>/<route>/v1/models",
            "not_found",
        )

    async def _authenticate(self, header: str | None, route: str) -> None:
        """Who calls, and may they call this route (``routes/use`` in its namespace)? Before the body."""
        namespace, name = route.split("/", 1)
        try:
            caller = await self.authenticator.authenticate(header)
            await self.authenticator.authorize(caller, Action.CALL_ROUTES, namespace, name)
        except Unauthenticated as error:
            raise ProxyError(401, str(error), "authentication_error") from error
        except Forbidden as error:
            raise ProxyError(403, str(error), "permission_error") from error
        except AuthUnavailable as error:
            raise ProxyError(503, str(error), "service_unavailable") from error

    async def _serve(
        self,
        active: ActiveRoute,
        path: str,
        headers: dict[str, str],
        payload: dict[str, Any],
        body: bytes,
        request_id: str,
        receive: Receive,
        send: Send,
    ) -> None:
        """Assign a variant, get its answer (or the champion's), pass it on, and record what happened."""
        created = datetime.now(UTC)
        pinned = _pinned_variant(active, headers)
        hashed, assigned = self._assign(active, headers, payload, request_id, pinned)
        stream = payload.get("stream") is True
        answer, served, error_message = await self._answer(
            active, assigned, pinned is None, path, payload, body, request_id, stream
        )
        status = 502 if answer is None else answer.response.status_code
        outcome = Outcome(b"", error=True) if answer is None else Outcome(answer.body, error=status >= 500)
        latency = None
        try:
            latency = await self._deliver(
                active, answer, served, error_message, request_id, outcome, receive, send
            )
        finally:
            self.state.metrics.requests.labels(active.config.key, served, str(status)).inc()
            if active.config.experiment:
                self.state.recorder.add(
                    Served(
                        request_id=request_id,
                        created_at=created,
                        namespace=active.config.namespace,
                        experiment=active.config.experiment,
                        variant=assigned,
                        served_variant=served,
                        unit_hash=hashed,
                        pinned=pinned is not None,
                        fallback=served != assigned,
                        status_code=status,
                        error=error_message is not None or outcome.error,
                        error_message=error_message or outcome.message,
                        latency_ms=None if latency is None else latency * 1000.0,
                        body=outcome.tail,
                        streamed=stream,
                        allocation=active.allocation,
                        route=active.config.name,
                    )
                )

    def _assign(
        self,
        active: ActiveRoute,
        headers: dict[str, str],
        payload: dict[str, Any],
        request_id: str,
        pinned: str | None,
    ) -> tuple[str, str]:
        """(the unit's hash, the variant it gets): the pinned one, else the hash's under the weights."""
        unit, source = assign.unit_id(active.config.unit, headers, payload.get("user"), request_id)
        hashed = assign.unit_hash(active.salt, unit)
        if source == "request" and active.config.unit != "Request":
            self.state.metrics.unit_missing.labels(active.config.key).inc()
        return hashed, pinned or assign.choose(hashed, active.weights)

    async def _answer(
        self,
        active: ActiveRoute,
        assigned: str,
        may_fall_back: bool,
        path: str,
        payload: dict[str, Any],
        body: bytes,
        request_id: str,
        stream: bool,
    ) -> tuple[Answer | None, str, str | None]:
        """(answer, variant that served, error): a failing challenger is replaced by the champion."""
        metrics, key = self.state.metrics, active.config.key
        try:
            return await self._call(active, assigned, path, payload, body, request_id, stream), assigned, None
        except UpstreamFailed as failure:
            metrics.errors.labels(key, assigned).inc()
            champion = active.champion.name
            if not may_fall_back or assigned == champion:
                return failure.answer, assigned, str(failure)
            metrics.fallbacks.labels(key, assigned).inc()
            try:
                return (
                    await self._call(active, champion, path, payload, body, request_id, stream),
                    champion,
                    str(failure),
                )
            except UpstreamFailed as second:
                metrics.errors.labels(key, champion).inc()
                return second.answer, champion, f"{failure}; {second}"

    async def _deliver(
        self,
        active: ActiveRoute,
        answer: Answer | None,
        served: str,
        error_message: str | None,
        request_id: str,
        outcome: Outcome,
        receive: Receive,
        send: Send,
    ) -> float | None:
        """Relay the answer to the client (or a 502 when nobody answered); the latency, once relayed."""
        extra = ((b"x-kaizen-request-id", request_id.encode()), (b"x-kaizen-variant", served.encode()))
        if answer is None:  # nobody answered at all; a 5xx answer would have been passed on
            failed = ProxyError(502, f"no healthy variant: {error_message}", "upstream_error")
            await send_error(send, failed, request_id, extra + active.headers)
            return None
        await relay(answer, extra + active.headers, receive, send, outcome)
        latency = time.perf_counter() - answer.started
        self.state.metrics.latency.labels(active.config.key, served).observe(latency)
        return latency

    async def _call(
        self,
        active: ActiveRoute,
        variant: str,
        path: str,
        payload: dict[str, Any],
        body: bytes,
        request_id: str,
        stream: bool,
    ) -> Answer:
        model = active.variants[variant].model
        if model is not None and payload.get("model") != model:
            body = orjson.dumps({**payload, "model": model})
        url = active.urls[(variant, path)]
        return await call_variant(
            self.state.transport, variant, url, body, request_id, active.timeout, stream
        )


def _pinned_variant(active: ActiveRoute, headers: dict[str, str]) -> str | None:
    """The variant ``X-Kaizen-Variant`` pins (a 400 when the route has no such variant), else None."""
    pinned = headers.get("x-kaizen-variant")
    if pinned is not None and pinned not in active.variants:
        raise ProxyError(
            400,
            f"X-Kaizen-Variant {pinned!r} is not a variant of this route ({', '.join(active.variants)})",
            "invalid_request_error",
            "X-Kaizen-Variant",
        )
    return pinned
