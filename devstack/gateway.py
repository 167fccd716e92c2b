"""The gateway as a separate process on a free loopback port: for tests that kill it, and benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devstack import processes
from devstack.ports import free_port

LOCAL_ROUTE_HOSTS = "127.0.0.1"


@dataclass
class GatewayProcess:
    database_url: str
    token_secret: str
    log: Path
    port: int = 0
    workers: int = 1
    # Accept ServiceAccount tokens, reviewed by the API server this kubeconfig reaches (as in a cluster).
    kubeconfig: Path | None = None
    # The local model servers (and the InferenceService stand-in's URLs) are on loopback, which a
    # real installation's allowlist refuses: the local gateway allows it explicitly.
    route_allowed_hosts: str = LOCAL_ROUTE_HOSTS
    env: dict[str, str] = field(default_factory=dict)  # other settings (KAIZEN_MAX_BODY_BYTES, ...)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the gateway is not running")
        return self._process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.port = self.port or free_port()
        env = {
            **os.environ,
            "KAIZEN_DATABASE_URL": self.database_url,
            "KAIZEN_TOKEN_SECRET": self.token_secret,
            "KAIZEN_ROUTE_ALLOWED_HOSTS": self.route_allowed_hosts,
            **self.env,
        }
        if self.kubeconfig is not None:
            env |= {"KAIZEN_KUBERNETES_AUTH": "true", "KUBECONFIG": str(self.kubeconfig)}
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "controllers.gateway.serve:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        processes.wait_until_answering(self._process, f"{self.url}/healthz", "gateway", self.log, timeout)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, in-flight requests are cut."""
        processes.kill(self._process)
        self._process = None

    def stop(self) -> None:
        processes.stop(self._process, grace=10)
        self._process = None
