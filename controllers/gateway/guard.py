"""Authentication before anything else: an ASGI layer that settles who is calling from the headers alone.

FastAPI reads (and parses) a request's body before it runs the endpoint's dependencies, so a token
checked in a dependency is checked too late: a caller without one could still make the gateway read
and parse a huge body. ``RequireIdentity`` sits in front of the app. For every path under ``/v1/``
it authenticates the ``Authorization`` header and answers 401 (or 503 when the API server cannot
review a ServiceAccount token) without reading a byte of the body. Otherwise it hands the request on
with the caller in ``request.state.principal``. Probes, ``/metrics`` and the OpenAPI document stay
open; the proxy under ``/openai/`` authenticates the same way itself.

Where the path alone says what a call does (writing a route or a policy names its namespace and name
in the path), the guard also authorizes it here, so a route hijack with an agent's token is a 403
before its body is read, whatever the body. The endpoint asks again (the answer is cached); calls
whose namespace or agents are in the body are authorized by their endpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from controllers.decisions.access import Action
from controllers.gateway.identity import Authenticator, AuthUnavailable, Forbidden, Unauthenticated

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PROTECTED = "/v1/"
# (method, path) -> the action, for calls whose path names their namespace and object.
BY_PATH = (
    ("PUT", re.compile(r"/v1/routes/([^/]+)/([^/]+)"), Action.WRITE_ROUTES),
    ("DELETE", re.compile(r"/v1/routes/([^/]+)/([^/]+)"), Action.WRITE_ROUTES),
    ("PUT", re.compile(r"/v1/policies/([^/]+)/([^/]+)"), Action.WRITE_POLICIES),
)


def path_action(method: str, path: str) -> tuple[Action, str, str] | None:
    """The action, namespace and name a call's method and path alone decide; None for the others."""
    for wanted, pattern, action in BY_PATH:
        found = pattern.fullmatch(path)
        if found and method == wanted:
            return action, found.group(1), found.group(2)
    return None


class RequireIdentity:
    def __init__(self, app: Any, authenticator: Authenticator, retry_after_seconds: int = 2) -> None:
        self.app, self.authenticator, self.retry_after = app, authenticator, retry_after_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        try:
            principal = await self.authenticator.authenticate(header.decode("latin-1") if header else None)
        except Unauthenticated as error:
            await _refuse(send, 401, str(error), [(b"www-authenticate", b"Bearer")])
            return
        except AuthUnavailable as error:
            await _refuse(send, 503, str(error), [(b"retry-after", str(self.retry_after).encode())])
            return
        decided = path_action(scope["method"], scope["path"])
        if decided is not None:
            try:
                await self.authenticator.authorize(principal, *decided)
            except Forbidden as error:
                await _refuse(send, 403, str(error), [])
                return
            except AuthUnavailable as error:
                await _refuse(send, 503, str(error), [(b"retry-after", str(self.retry_after).encode())])
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    """Answer in the gateway's error shape (``controllers.gateway.errors``), body unread.

    The request body is left unread on purpose, and ``Connection: close`` tells the server to drop the
    connection after the answer instead of draining whatever the caller keeps sending."""
    problems = [{"field": "Authorization", "message": message}]
    body = json.dumps({"error": message, "problems": problems}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
