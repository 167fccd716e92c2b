"""A real Ray head on this machine, on free loopback ports, that stops completely when asked.

Tests, benchmarks and the embedded default submit to it exactly as the operator submits to a cluster:
through the Jobs REST API on the dashboard port. It runs ``ray start --head --block`` in a process
group of its own with a private temp dir, so stopping it ends only the processes it started (the GCS,
raylet, dashboard, agents and every worker), never another Ray on the same machine — ``ray stop``
would kill them all.

**The cluster's own machine.** A pod of a real cluster sees its image, the env its spec declares and
the volumes it mounts — nothing of the operator's disk or environment. So the head is started

- with a clean environment: only the "image" part of ours (``PATH``, ``HOME``, locale, ``PYTHONPATH``,
  CA bundles, the Hugging Face offline switches) plus ``env``; never ``AWS_*``, ``KAIZEN_*`` or any
  other credential of the process that starts it. Ray hands its own environment to every job driver,
  so this is what a job sees before the RayJob's pod spec adds anything;
- with ``hidden`` directories (e.g. the parent of every operator's data root) covered by an empty,
  read-only tmpfs in a private mount namespace (``unshare --mount``, which needs root): the head,
  every driver and every worker see them empty, as a pod would not see them at all. The venv, the
  repository, the base-model cache and the head's temp dir stay visible: they are the image.
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
from collections.abc import Sequence
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
# What the trainer image would set; nothing else of the starting process reaches the cluster.
_IMAGE_ENV = (
    "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
)  # fmt: skip
_REPO = Path(__file__).resolve().parents[1]
# Run by ``sh -c`` inside the new mount namespace: cover each directory up to "--", then become Ray.
_HIDE_THEN_EXEC = (
    'while [ "$1" != -- ]; do mount -t tmpfs -o ro,mode=0555,size=4k kaizen-hidden "$1" || exit 1; '
    'shift; done; shift; exec "$@"'
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


def image_env(extra: dict[str, str]) -> dict[str, str]:
    """The head's environment: the image part of ours, then ``extra``."""
    kept = {name: os.environ[name] for name in _IMAGE_ENV if name in os.environ}
    kept.update((name, value) for name, value in os.environ.items() if name.startswith("LC_"))
    return {**kept, **extra}


def image_paths(env: dict[str, str]) -> list[Path]:
    """What the jobs need from this machine, as from an image: the venv, the code, the model cache."""
    cache = env.get("KAIZEN_CACHE") or str(Path.home() / ".cache")
    paths = [Path(sys.prefix), _REPO, Path(cache)]
    paths += [Path(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return [path.resolve() for path in paths]


def check_hidden(hidden: Sequence[Path], needed: Sequence[Path]) -> list[Path]:
    """``hidden`` as absolute paths, each created if missing; refused if it would cover a needed path."""
    resolved = []
    for folder in hidden:
        path = Path(folder).resolve()
        covered = [need for need in needed if need == path or path in need.parents]
        if path == Path("/") or covered:
            raise ValueError(
                f"LocalRayHead(hidden=...): {path} would hide {covered or ['/']}, which the jobs need "
                "as part of their image; hide a folder that holds only the operators' data"
            )
        path.mkdir(parents=True, exist_ok=True)
        resolved.append(path)
    return resolved


class LocalRayHead:
    def __init__(
        self, num_cpus: int = 2, env: dict[str, str] | None = None, hidden: Sequence[Path] = ()
    ) -> None:
        self.num_cpus = num_cpus
        self.env = env or {}
        self.hidden = tuple(Path(path) for path in hidden)
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

    def command(self) -> list[str]:
        """``ray start``; behind ``unshare`` and the tmpfs mounts when there are folders to hide."""
        ray = Path(sys.executable).with_name("ray")  # the venv's ray: workers then share the venv
        command = [
            str(ray), "start", "--head", "--block", "--disable-usage-stats",
            f"--num-cpus={self.num_cpus}", "--num-gpus=0", "--node-ip-address=127.0.0.1",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1",
            f"--temp-dir={self.temp_dir}", "--object-store-memory=300000000",
            *(f"{flag}={port}" for flag, port in self.ports.items()),
        ]  # fmt: skip
        if not self.hidden:
            return command
        hidden = check_hidden(self.hidden, [self.temp_dir.resolve(), *image_paths(self.environment())])
        unshare = shutil.which("unshare")
        if unshare is None:
            raise RuntimeError("hiding folders from Ray needs util-linux's unshare (and root)")
        hide = [unshare, "--mount", "--propagation", "private", "--", "sh", "-c", _HIDE_THEN_EXEC, "kzhide"]
        return [*hide, *map(str, hidden), "--", *command]

    def environment(self) -> dict[str, str]:
        env = image_env({"RAY_USAGE_STATS_ENABLED": "0", **self.env})
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token})
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        # Scratch space of the cluster's "pods" (each job's working folder): gone when the head stops.
        env["TMPDIR"] = str(self.temp_dir / "tmp")
        return env

    def start(self, timeout: float = 90.0) -> LocalRayHead:
        command = self.command()
        (self.temp_dir / "tmp").mkdir(exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                cwd=self.temp_dir,  # not the caller's folder: a pod starts in its image's
                start_new_session=True,
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
