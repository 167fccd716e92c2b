"""Request bodies are limited while they are read: 413 at once for a Content-Length over the limit,
and as soon as a chunked body passes it, on the ingest API (``BodyLimit``) and on the proxy."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.gateway.limits import BodyLimit
from controllers.store import migrate
from devstack.gateway import GatewayProcess

SECRET = "limits-secret"
TOKEN = auth.issue(SECRET, "limits", 3600, role=Role.ADMIN, namespaces=["team"])
API_LIMIT, PROXY_LIMIT = 1000, 2000
BATCH = "/v1/runs/batch"
PROXY = "/openai/team/limited/v1/chat/completions"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    work = tmp_path_factory.mktemp("limits")
    url = f"sqlite:///{work / 'kaizen.db'}"
    migrate.upgrade(url)
    settings = {"KAIZEN_MAX_BODY_BYTES": str(API_LIMIT), "KAIZEN_PROXY_MAX_BODY_BYTES": str(PROXY_LIMIT)}
    process = GatewayProcess(url, SECRET, Path(work / "gateway.log"), env=settings)
    process.start()
    route = {
        "namespace": "team",
        "name": "limited",
        "variants": [{"name": "only", "endpoint": "http://127.0.0.1:9/v1", "weight": 100, "champion": True}],
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.put(f"{process.url}/v1/routes/team/limited", json=route, headers=headers).status_code == 200
    yield process
    process.stop()


def exchange(gateway: GatewayProcess, head: str, *parts: bytes) -> tuple[int, dict[str, Any]]:
    """Send a request head and body parts on a raw socket, never finishing a chunked body; the status
    and JSON body of the answer, which must come while the client is still "sending"."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as conn:
        conn.sendall(head.encode() + b"".join(parts))
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < _length(received):
            chunk = conn.recv(65536)
            assert chunk, f"connection closed before a whole answer: {received!r}"
            received += chunk
    head_bytes, body = received.split(b"\r\n\r\n", 1)
    return int(head_bytes.split()[1]), json.loads(body)


def _length(received: bytes) -> int:
    for line in received.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


def request_head(path: str, *headers: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: gateway", f"Authorization: Bearer {TOKEN}", *headers]
    return "\r\n".join([*lines, "Content-Type: application/json"]) + "\r\n\r\n"


def chunk(size: int) -> bytes:
    return f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"


def test_an_api_body_declared_over_the_limit_is_refused_before_a_byte_is_read(
    gateway: GatewayProcess,
) -> None:
    status, answer = exchange(gateway, request_head(BATCH, "Content-Length: 50000000"))  # no body sent
    assert status == 413
    assert f"limit of {API_LIMIT} bytes" in answer["error"]
    assert "split the batch" in answer["error"]
    assert answer["problems"][0]["field"] == "body"


def test_a_chunked_api_body_is_refused_as_soon_as_it_passes_the_limit(gateway: GatewayProcess) -> None:
    head = request_head(BATCH, "Transfer-Encoding: chunked")
    status, answer = exchange(gateway, head, chunk(600), chunk(600))  # 1200 bytes, and no end
    assert status == 413
    assert "split the batch" in answer["error"]


def test_a_body_under_the_limit_reaches_the_api(gateway: GatewayProcess) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "small"}
    response = httpx.post(f"{gateway.url}{BATCH}", json={"runs": []}, headers=headers)
    assert response.status_code != 413
    assert response.status_code < 500, response.text


def test_a_proxy_body_declared_over_its_limit_is_refused_in_openai_shape(gateway: GatewayProcess) -> None:
    status, answer = exchange(gateway, request_head(PROXY, f"Content-Length: {PROXY_LIMIT + 1}"))
    assert status == 413
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == "body"
    assert answer["error"]["code"] == 413
    assert f"limit of {PROXY_LIMIT} bytes" in answer["error"]["message"]
    assert "KAIZEN_PROXY_MAX_BODY_BYTES" in answer["error"]["message"]


def test_a_chunked_proxy_body_is_refused_as_soon_as_it_passes_its_limit(gateway: GatewayProcess) -> None:
    head = request_head(PROXY, "Transfer-Encoding: chunked")
    status, answer = exchange(gateway, head, chunk(1500), chunk(1500))
    assert status == 413
    assert answer["error"]["code"] == 413


def test_the_proxy_limit_is_its_own(gateway: GatewayProcess) -> None:
    """1500 bytes pass the API's limit but not the proxy's: the proxy reads them and tries the upstream."""
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 1400}]}
    response = httpx.post(f"{gateway.url}{PROXY}", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 502  # nothing listens upstream; the body itself was accepted


class Recorder:
    """An ASGI app that reads its whole body and records what it was given."""

    def __init__(self) -> None:
        self.seen, self.ran = 0, False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.ran = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                await send({"type": "http.response.start", "status": 400, "headers": []})
                await send({"type": "http.response.body", "body": b"gone"})
                return
            self.seen += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def drive(app: Any, parts: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[list[Any], int]:
    """Run ``app`` on a request of ``parts``; what it sent, and how many parts the server gave out."""
    given, sent = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal given
        given += 1
        return {"type": "http.request", "body": parts[given - 1], "more_body": given < len(parts)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "headers": headers}, receive, send))
    return sent, given


def test_the_app_never_sees_more_than_the_limit_and_its_late_answer_is_dropped() -> None:
    inner = Recorder()
    sent, given = drive(BodyLimit(inner, 100), [b"x" * 60, b"x" * 60, b"x" * 60], [])
    assert inner.seen == 60  # the part that passed the limit was never handed on
    assert given == 2  # and the third part was never read
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert b"limit of 100 bytes" in sent[1]["body"]


def test_a_declared_length_over_the_limit_never_runs_the_app() -> None:
    inner = Recorder()
    sent, given = drive(BodyLimit(inner, 100), [b"x" * 10], [(b"content-length", b"101")])
    assert (inner.ran, given) == (False, 0)
    assert sent[0]["status"] == 413


def test_a_body_at_the_limit_passes_whole() -> None:
    inner = Recorder()
    sent, _ = drive(BodyLimit(inner, 100), [b"x" * 50, b"x" * 50], [(b"content-length", b"100")])
    assert inner.seen == 100
    assert sent[0]["status"] == 200
