"""A real Ray head on this machine, on free loopback ports, that stops completely when asked.

Tests, benchmarks and the embedded default submit to it exactly as the operator submits to a cluster:
through the Jobs REST API on the dashboard port. It runs ``ray start --head --block`` in a process
group of its own with a private temp dir, so stopping it ends only the processes it started (the GCS,
raylet, dashboard, agents and every worker), never another Ray on the same machine — ``ray stop``
would kill them all.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

_PORT_FLAGS = (
    "--port",
    "--dashboard-port",
    "--node-manager-port",
    "--object-manager-port",
    "--runtime-env-agent-port",
    "--dashboard-agent-grpc-port",
    "--dashboard-agent-listen-port",
    "--metrics-export-port",
)


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out (held open together, so they are distinct)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalRayHead:
    def __init__(self, num_cpus: int = 2, env: dict[str, str] | None = None) -> None:
        self.num_cpus = num_cpus
        self.env = env or {}
        # Token authentication, as a production cluster has it: clients send "Authorization: Bearer <token>".
        self.token = secrets.token_hex(32)
        # Ray's unix sockets live under the temp dir and must stay under ~107 bytes: keep it short.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="kzray-", dir="/tmp"))
        self.log_path = self.temp_dir / "ray-start.log"
        self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['--dashboard-port']}"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.ports['--port']}"

    def start(self, timeout: float = 90.0) -> LocalRayHead:
        ray = Path(sys.executable).with_name("ray")  # the venv's ray: workers then share the venv
        command = [
            str(ray), "start", "--head", "--block", "--disable-usage-stats",
            f"--num-cpus={self.num_cpus}", "--num-gpus=0", "--node-ip-address=127.0.0.1",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1",
            f"--temp-dir={self.temp_dir}", "--object-store-memory=300000000",
            *(f"{flag}={port}" for flag, port in self.ports.items()),
        ]  # fmt: skip
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **self.env}
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token})
        env.pop("RAY_AUTH_TOKEN_PATH", None)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self._process.returncode}:\n{self.log_tail()}")
            if self._jobs_api_ready():
                return self
            time.sleep(0.5)
        tail = self.log_tail()
        self.stop()
        raise TimeoutError(f"Ray's Jobs API did not answer within {timeout:.0f}s:\n{tail}")

    def _jobs_api_ready(self) -> bool:
        request = urllib.request.Request(f"{self.dashboard_url}/api/jobs/", headers=self.auth_headers)
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log_tail(self, size: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""

    def processes(self) -> list[int]:
        """PIDs still in the head's process group (empty once it is fully stopped)."""
        if self._process is None:
            return []
        self._process.poll()  # reap the leader once it exits, so it does not linger as a zombie
        found = subprocess.run(
            ["pgrep", "-g", str(self._process.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in found.stdout.split()]

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to ``ray start --block``, which shuts down what it started; then, shortly after,
        SIGKILL to whatever of the group is left (the dashboard's forkserver outlives it, for one)."""
        if self._process is None:
            return
        leader, group = self._process, self._process.pid
        leader.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            leader.wait(timeout=grace)
        for sig, wait in ((None, 1.0), (signal.SIGKILL, 10.0)):
            if sig is not None and self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, sig)
            deadline = time.monotonic() + wait
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
        leader.wait(timeout=10)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self._process = None

    def __enter__(self) -> LocalRayHead:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
