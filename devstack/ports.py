"""Free loopback ports for the local servers (control plane, PostgreSQL, gateway, model servers)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port that was free a moment ago; the caller binds it soon after (small, accepted race)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listen_loopback(port: int = 0) -> socket.socket:
    """A listening loopback socket. With port 0 the kernel picks a free port as it binds: no window in
    which another process can be handed the same port, as there is between free_port() and a bind."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock
