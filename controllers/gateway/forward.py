"""One call to one variant, and relaying its answer to the client: the router's I/O with upstreams.

``call_variant`` reads as much of the answer as may be read before committing to it: all of it for a
plain response, the first chunk for a stream. Until then nothing has reached the client, so a
refused connection, a timeout or a 5xx raises ``UpstreamFailed`` and the caller can still try the
champion. ``relay`` then sends the answer on, chunk by chunk for a stream; a stream that breaks after
its first bytes cannot fall back any more and ends as vLLM ends a failed stream: an error event,
then ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = tuple[tuple[bytes, bytes], ...]

STREAM_TAIL = 8192  # bytes of a stream kept for the recorder (the usage chunk comes last)
PASSED_HEADERS = (b"content-type", b"cache-control")


@dataclass(slots=True)
class Answer:
    """An upstream response opened and read up to what may be sent: all of it, or a stream's first chunk."""

    response: httpx.Response
    body: bytes
    chunks: AsyncIterator[bytes] | None  # the rest of a stream, None when ``body`` is everything
    started: float  # when the request went to this variant (a fallback's latency excludes the failure)


class UpstreamFailed(Exception):
    """A variant could not answer: no connection, a timeout, or a 5xx (kept, to pass on if nobody can)."""

    def __init__(self, message: str, answer: Answer | None = None) -> None:
        super().__init__(message)
        self.answer = answer


@dataclass(slots=True)
class Outcome:
    """What became of a relayed answer, for the assignment row."""

    tail: bytes
    error: bool
    message: str | None = None

    def fail(self, message: str) -> None:
        self.error, self.message = True, message


async def call_variant(
    transport: httpx.AsyncHTTPTransport,
    variant: str,
    url: httpx.URL,
    body: bytes,
    request_id: str,
    timeout: dict[str, float | None],
    stream: bool,
) -> Answer:
    request = httpx.Request(
        "POST",
        url,
        content=body,
        headers=[
            (b"content-type", b"application/json"),
            (b"accept-encoding", b"identity"),  # bytes pass through as they are
            (b"user-agent", b"kaizen-router"),
            (b"x-request-id", request_id.encode()),
        ],
        extensions={"timeout": timeout},
    )
    started = time.perf_counter()
    try:
        response = await transport.handle_async_request(request)
    except httpx.TransportError as error:
        raise UpstreamFailed(f"{variant}: {describe(error)}") from error
    chunks = response.aiter_raw()
    try:
        if response.status_code >= 500 or not stream:
            answer = Answer(response, b"".join([chunk async for chunk in chunks]), None, started)
            await response.aclose()
            if response.status_code >= 500:
                raise UpstreamFailed(f"{variant}: HTTP {response.status_code}", answer)
            return answer
        first = await anext(chunks, b"")
    except httpx.TransportError as error:
        await response.aclose()
        raise UpstreamFailed(f"{variant}: {describe(error)}") from error
    return Answer(response, first, chunks, started)


async def relay(answer: Answer, extra: Headers, receive: Receive, send: Send, outcome: Outcome) -> None:
    headers = [(k, v) for k, v in answer.response.headers.raw if k.lower() in PASSED_HEADERS]
    headers.extend(extra)
    status = answer.response.status_code
    if answer.chunks is None:
        headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        return
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": True})
    gone = asyncio.Event()
    watcher = asyncio.create_task(_watch_disconnect(receive, gone))
    try:
        async for chunk in answer.chunks:
            if gone.is_set():  # stop pulling tokens nobody will read; closing tells the upstream
                outcome.message = "the client disconnected mid-stream"  # noted, not the variant's error
                break
            outcome.tail = (outcome.tail + chunk)[-STREAM_TAIL:]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx.TransportError as error:
        outcome.fail(f"upstream broke mid-stream: {describe(error)}")
        event = {"error": {"message": outcome.message, "type": "upstream_error", "code": 502}}
        closing = f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode()
        await send({"type": "http.response.body", "body": closing, "more_body": True})
    finally:
        watcher.cancel()
        await answer.response.aclose()
    await send({"type": "http.response.body", "body": b""})


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


def describe(error: httpx.TransportError) -> str:
    kind = "timed out" if isinstance(error, httpx.TimeoutException) else "connection failed"
    return f"{kind} ({type(error).__name__}: {error or 'no detail'})"
