"""Child processes the local stack and the tests start: wait until one answers, stop it, kill it.

The gateway, the operator and the upstream stand-in are each a subprocess with an HTTP endpoint; they
share these three steps so that each wrapper says only what differs (its command and its URL).
Processes known only by pid (started by another process, such as `kaizen up` before `kaizen down`)
get the same two questions answered by ``pid_alive`` and ``terminate_pid``.
"""

from __future__ import annotations

import contextlib
import os
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


def pid_alive(pid: int) -> bool:
    """The process runs: it exists and is not a zombie (an exited child of ours is reaped on the way)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but it exists
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited:
            return False
    except ChildProcessError:
        pass  # not our child: /proc says whether it is a zombie waiting for its own parent
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # no /proc to ask; kill(0) said it exists
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state != "Z"


def terminate_pid(pid: int, grace: float = 15.0) -> None:
    """SIGTERM by pid, and SIGKILL if it still runs after ``grace`` seconds; returns once it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)
