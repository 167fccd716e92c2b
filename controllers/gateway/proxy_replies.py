"""What the proxy answers by itself, in OpenAI's shapes: its errors, and the body limit.

``ProxyError`` is any answer the router gives without an upstream (``{"error": {"message", "type",
"param", "code"}}``), and ``read_body`` reads a request's body under the proxy's limit (413 past it).
"""

from __future__ import annotations

from typing import Any

import orjson

from controllers.gateway.forward import Receive, Send


class ProxyError(Exception):
    """A request the proxy answers itself, in OpenAI's error shape."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


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
