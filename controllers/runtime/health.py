"""The operator's /healthz, served from startup whether or not this replica leads.

A standby replica is healthy (it is waiting for the Lease, as it should); Kopf's own liveness endpoint
only exists while the handlers run, which would make a standby look dead and deadlock a rolling update
of a single replica. The answer says whether this replica leads, for people and dashboards.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable


async def serve_health(port: int, leading: Callable[[], bool], host: str = "0.0.0.0") -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if path.split(b"?")[0] in (b"/healthz", b"/readyz"):
                status, body = "200 OK", json.dumps({"ok": True, "leading": leading()}).encode()
            else:
                status, body = "404 Not Found", b'{"error": "use /healthz"}'
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)
