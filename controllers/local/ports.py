"""Free loopback ports for the local servers (control plane, PostgreSQL, gateway)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port that was free a moment ago; the caller binds it soon after (small, accepted race)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
