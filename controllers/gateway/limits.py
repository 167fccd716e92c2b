"""Request body limits, enforced while the body is read: ``BodyLimit``, a plain ASGI middleware.

A request whose ``Content-Length`` passes the limit is answered 413 at once, and the app never runs. A
body without one (chunked, streamed) is counted as the app reads it: the message that would pass the
limit is not handed on; the client gets the 413 then and there, and the app is told the client went
away (``http.disconnect``), so it never holds more than the limit. Whatever the app answers after
that is dropped.

It is a class around any ASGI app, so it composes in any order (an authentication layer in front of
it refuses a request without a token before a byte of its body is read).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson

from controllers.gateway.forward import Message, Receive, Send

Scope = MutableMapping[str, Any]
DISCONNECT: Message = {"type": "http.disconnect"}


def too_large_body(max_bytes: int, setting: str) -> bytes:
    """The gateway's error shape for a body over ``max_bytes``, saying what to do about it."""
    message = (
        f"request body is larger than this gateway's limit of {max_bytes} bytes: split the batch into "
        f"smaller requests (or ask the gateway's operator to raise {setting})"
    )
    return orjson.dumps({"error": message, "problems": [{"field": "body", "message": message}]})


class BodyLimit:
    """Answer 413 for a request body over ``max_bytes``, read no further, and never pass more on."""

    def __init__(self, app: Any, max_bytes: int, setting: str = "KAIZEN_MAX_BODY_BYTES") -> None:
        if max_bytes < 1:
            raise ValueError(f"{setting} must be a positive number of bytes, not {max_bytes}")
        self.app, self.max_bytes = app, max_bytes
        self.body = too_large_body(max_bytes, setting)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self.refuse(send)
            return
        await self.app(scope, *_Reading(self, receive, send).channels())

    async def refuse(self, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
            (b"connection", b"close"),  # the rest of the body is never read
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class _Reading:
    """One request's count of body bytes, between the server and the app."""

    def __init__(self, limit: BodyLimit, receive: Receive, send: Send) -> None:
        self.limit, self._receive, self._send = limit, receive, send
        self.size, self.over, self.started, self.answered = 0, False, False, False

    def channels(self) -> tuple[Receive, Send]:
        return self.receive, self.send

    async def receive(self) -> Message:
        if self.over:
            return DISCONNECT
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        self.size += len(message.get("body", b""))
        if self.size <= self.limit.max_bytes:
            return message
        self.over = True
        if not self.started:  # a response under way cannot be replaced; the app just loses the client
            self.answered = True
            await self.limit.refuse(self._send)
        return DISCONNECT

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # the 413 went out: what the app says after that is nobody's business
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return None
