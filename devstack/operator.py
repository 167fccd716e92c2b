"""The operator as a separate process (``operator/main.py``): for e2e and chaos tests that kill -9 it,
for two-replica tests, and for ``kaizen up``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack import processes
from devstack.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "operator" / "main.py"


@dataclass
class OperatorProcess:
    kubeconfig: Path
    database_url: str
    gateway_url: str
    gateway_token: str
    data_root: Path
    log: Path
    lease_namespace: str = "default"
    namespaces: tuple[str, ...] = ()
    poll_seconds: float = 1.0
    policy_poll_seconds: float = 1.0
    experiment_poll_seconds: float = 0.5
    lease_seconds: float = 4.0
    extra_env: dict[str, str] = field(default_factory=dict)
    gateway_token_file: str = ""  # a ServiceAccount token (wins over gateway_token), as in the chart
    python: str = sys.executable  # the trainer entrypoint's interpreter (a stand-in for the chaos suite)
    health_port: int = 0
    metrics_port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def command(self) -> list[str]:
        command = [
            sys.executable, str(MAIN),
            "--kubeconfig", str(self.kubeconfig),
            "--database-url", self.database_url,
            "--gateway-url", self.gateway_url,
            "--gateway-token", self.gateway_token,
            "--data-root", str(self.data_root),
            "--python", self.python,
            "--lease-namespace", self.lease_namespace,
            "--poll-seconds", str(self.poll_seconds),
            "--policy-poll-seconds", str(self.policy_poll_seconds),
            "--experiment-poll-seconds", str(self.experiment_poll_seconds),
            "--lease-seconds", str(self.lease_seconds),
            "--health-port", str(self.health_port),
            "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        if self.gateway_token_file:
            command += ["--gateway-token-file", self.gateway_token_file]
        for namespace in self.namespaces:
            command += ["--namespace", namespace]
        return command

    def start(self, timeout: float = 60.0, tries: int = 3) -> None:
        """Start on free loopback ports. A port free a moment ago can be handed to another process's
        outgoing connection before the operator binds it (seconds of imports later, on a busy machine):
        that start fails with "address already in use" and is made again on other ports — in a
        cluster a pod's ports are its own, so this race belongs to the local stack alone."""
        for attempt in range(1, tries + 1):
            self.health_port, self.metrics_port = free_port(), free_port()
            written = self.log.stat().st_size if self.log.exists() else 0
            with self.log.open("ab") as log:
                self._process = subprocess.Popen(
                    self.command(),
                    env={**os.environ, **self.extra_env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            try:
                processes.wait_until_answering(self._process, url, "operator", self.log, timeout)
                return
            except RuntimeError:
                with self.log.open("rb") as log:
                    log.seek(written)
                    taken = b"address already in use" in log.read()
                if not taken or attempt == tries:
                    raise

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the operator dies wherever it is, as in a node failure."""
        processes.kill(self._process)
        self._process = None

    def stop(self) -> None:
        processes.stop(self._process)
        self._process = None

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
