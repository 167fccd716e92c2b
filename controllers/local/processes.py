"""Child processes the local stack and the tests start: wait until one answers, stop it, kill it.

The gateway, the operator and the upstream stand-in are each a subprocess with an HTTP endpoint; they
share these three steps so that each wrapper says only what differs (its command and its URL).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx


def wait_until_answering(
    process: subprocess.Popen[bytes], url: str, name: str, log: Path, timeout: float
) -> None:
    """Poll ``url`` until it answers 200; fail early (naming the log) if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{name} did not answer at {url} within {timeout:.0f}s; see {log}")


def stop(process: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    """SIGTERM, and SIGKILL if it has not exited after ``grace`` seconds; always reaped."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL: no graceful shutdown, whatever it was doing is cut."""
    if process is not None:
        process.send_signal(signal.SIGKILL)
        process.wait()
