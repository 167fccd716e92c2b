"""The local runtime: stand-in controllers for what one machine lacks — KubeRay and KServe.

Used by the end-to-end tests and ``kaizen up``; never part of the operator image. ``LocalRuntime``
runs it as a separate process (so tests can kill and restart it like a crashing controller):

    runtime = LocalRuntime(kubeconfig, state_dir, ray_address=head.dashboard_url, ray_token=head.token)
    runtime.start()   # CRDs installed, both stand-ins watching
    ...
    runtime.stop()    # graceful: also stops the model servers; runtime.kill() leaves them to be adopted

The same from a shell: ``python -m devstack.runtime --kubeconfig FILE --ray-address URL``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.runtime.app import READY_FILE


class RuntimeStartError(RuntimeError):
    """The runtime process did not come up; the message points at its log."""


@dataclass
class LocalRuntime:
    kubeconfig: Path
    state_dir: Path
    ray_address: str | None = None
    ray_token: str | None = None
    upstream_crds: Path | None = None
    max_tokens: int = 64
    log_level: str = "INFO"
    env: dict[str, str] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.state_dir / "runtime.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        command = [
            sys.executable, "-m", "devstack.runtime", "--kubeconfig", str(self.kubeconfig),
            "--state-dir", str(self.state_dir), "--max-tokens", str(self.max_tokens), "--log-level", self.log_level,
        ]  # fmt: skip
        if self.ray_address:
            command += ["--ray-address", self.ray_address]
        if self.upstream_crds:
            command += ["--upstream-crds", str(self.upstream_crds)]
        return command

    def start(self, timeout: float = 90.0) -> LocalRuntime:
        """Start the process and wait until it is watching (CRDs installed, caches synced)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ready = self.state_dir / READY_FILE
        ready.unlink(missing_ok=True)
        env = {**os.environ, **self.env}
        if self.ray_token:
            env["KAIZEN_RAY_TOKEN"] = self.ray_token
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeStartError(
                    f"local runtime exited with {self._process.returncode}; see {self.log}"
                )
            if ready.exists() and json.loads(ready.read_text() or "{}").get("pid") == self._process.pid:
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeStartError(f"local runtime not ready after {timeout:.0f}s; see {self.log}")

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM: the runtime stops its model servers and exits."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def kill(self) -> None:
        """SIGKILL, as a crash: model servers keep running for the next start to adopt."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
