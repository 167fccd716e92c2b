"""Huge and hostile requests against a real gateway process: refused before the body is read.

Peak memory is the process's high-water mark (``VmHWM`` in ``/proc/<pid>/status``), read before and
after. A 100 MB body sent without a token must not move it by 32 MiB: the token is checked from the
headers, and the body is never read. With a valid token, the body limit answers 413 before parsing.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.security.gateway_world import NAMESPACE, World

HUNDRED_MB = 100 * 1024 * 1024
CHUNK = b"[" + b"0," * (512 * 1024 - 1) + b"0"  # about 1 MiB of a JSON array that never closes


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def send_huge(url: str, path: str, headers: dict[str, str], size: int = HUNDRED_MB) -> tuple[int, bytes, int]:
    """Stream ``size`` bytes as a request body; returns (status, response head, bytes the server took)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json"]
        head += [f"Content-Length: {size}", *(f"{k}: {v}" for k, v in headers.items())]
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        try:
            while sent < size:
                piece = CHUNK[: size - sent]
                connection.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: exactly what should happen
        connection.settimeout(30)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                data = connection.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, answer, sent


def test_a_huge_body_without_a_token_is_refused_unread(security_world: World) -> None:
    pid = security_world.gateway.pid
    before = peak_rss_kib(pid)
    status, answer, sent = send_huge(security_world.gateway.url, "/v1/runs/batch", {})
    grown_mib = (peak_rss_kib(pid) - before) / 1024
    assert status == 401, answer[:300]
    assert sent < HUNDRED_MB // 2, "the gateway kept taking the body after refusing it"
    assert grown_mib < 32, f"peak memory grew by {grown_mib:.1f} MiB for a body nobody may send"


def test_a_huge_body_with_a_token_is_413_before_parsing(security_world: World) -> None:
    pid = security_world.gateway.pid
    before = peak_rss_kib(pid)
    headers = {**security_world.callers["agent"], "Idempotency-Key": security_world.unique("huge")}
    status, answer, sent = send_huge(security_world.gateway.url, "/v1/runs/batch", headers)
    grown_mib = (peak_rss_kib(pid) - before) / 1024
    assert status == 413, answer[:300]
    assert sent < HUNDRED_MB // 2, "the gateway kept taking the body after refusing it"
    assert b"limit" in answer.lower()
    assert grown_mib < 32, f"peak memory grew by {grown_mib:.1f} MiB for a refused body"


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer \xe9\xe8\xff",
        b"Bearer kz2.\xc3\xa9.x",
        b"Bearer " + b"A" * 9000,
        b"Basic dXNlcjpwYXNz",
        b"Bearer",
    ],
)
def test_hostile_authorization_headers_are_401_never_500(security_world: World, authorization: bytes) -> None:
    parts = urlsplit(security_world.gateway.url)
    body = b'{"namespace": "%s", "runs": []}' % NAMESPACE.encode()
    request = (
        b"POST /v1/runs/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: " + authorization + b"\r\nIdempotency-Key: k\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while data := connection.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]
    assert b"token" in answer
