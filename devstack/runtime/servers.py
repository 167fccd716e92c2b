"""The model server processes of the InferenceService stand-in, and the state file that outlives it.

Each InferenceService owns a listening loopback socket (its URL), which the runtime binds itself —
port 0, so no other process can be handed the port — and passes to one or more server instances:
one per replica (``minReplicas``), twice that while a changed spec rolls out (the new instances accept
from the same socket before the old ones stop). Each instance also listens on a port of its own, its
"pod address", which the stand-in publishes in the predictor Service's EndpointSlices: what the
operator calls to load an adapter into one replica. An instance runs with the environment its pod
would have — none of the runtime's own AWS_* variables, only the credentials of the predictor's
ServiceAccount — and downloads what it loads at run time into a folder of its own. Instances run in their own sessions, so they survive a crash of the
runtime as pods survive their controller; ``state.json`` records each instance's pid, identity token
and private health socket, so that a restarted runtime adopts them — checked by the token in the
process's command line, never by pid alone — instead of starting duplicates. A restarted runtime no
longer holds the listening socket of an adopted server; if that server must be replaced, it is
stopped first and the port bound again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from devstack.ports import listen_loopback
from devstack.runtime.isvc_plan import ServerPlan

MODEL_SERVER = "devstack.modelserver"
DRAIN_SECONDS = 1.0  # between "stop accepting" and SIGTERM: a request accepted just before is read by then


@dataclass
class Instance:
    pid: int
    admin: str  # the instance's Unix socket for health checks
    plan: str  # ServerPlan.digest
    token: str
    log: str
    pod_port: int = 0  # the replica's own address (its pod IP:port in a cluster)


@dataclass
class Entry:
    uid: str
    port: int
    instances: list[Instance] = field(default_factory=list)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def alive(instance: Instance) -> bool:
    """The instance's process still runs (and is the one started under its token)."""
    try:
        waited, _ = os.waitpid(instance.pid, os.WNOHANG)  # reap it if it is our exited child
        if waited:
            return False
    except ChildProcessError:
        pass  # not our child (adopted after a restart): /proc tells
    return instance.token in _cmdline(instance.pid)


class Supervisor:
    def __init__(self, state_dir: Path, *, max_tokens: int = 64, python: str = sys.executable) -> None:
        self.state_dir, self.max_tokens, self.python = state_dir, max_tokens, python
        self.logs = state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, Entry] = {}
        self._sockets: dict[str, socket.socket] = {}
        state = state_dir / "state.json"
        if state.exists():
            for key, raw in json.loads(state.read_text()).items():
                entry = Entry(raw["uid"], raw["port"], [Instance(**i) for i in raw["instances"]])
                entry.instances = [i for i in entry.instances if alive(i)]
                if entry.instances:  # an entry without servers gets a fresh socket when next needed
                    self.entries[key] = entry
        self.save()

    def save(self) -> None:
        state = {key: asdict(entry) for key, entry in self.entries.items()}
        temporary = self.state_dir / "state.json.tmp"
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.state_dir / "state.json")

    def entry(self, key: str, uid: str) -> Entry:
        """The entry of ``key``, with a new listening socket if it has none (or belonged to an older
        object of the same name)."""
        entry = self.entries.get(key)
        if entry is None or entry.uid != uid:
            sock = listen_loopback()
            self._sockets[key] = sock
            entry = self.entries[key] = Entry(uid, sock.getsockname()[1])
            self.save()
        return entry

    async def start(
        self,
        key: str,
        entry: Entry,
        server: ServerPlan,
        local: tuple[str, tuple[tuple[str, str], ...]] | None = None,
        credentials: dict[str, str] | None = None,
    ) -> Instance:
        """One more instance of ``server``; ``local`` is (base, adapters) after the storage initializer
        fetched what was remote, ``credentials`` the env the instance's runtime LoRA loads use."""
        sock = self._sockets.get(key)
        if sock is None:  # adopted after a restart: the old servers hold the only copies of the socket
            for old in list(entry.instances):
                await self.stop(entry, old)
            try:
                sock = listen_loopback(entry.port)
            except OSError:
                sock = listen_loopback()
                entry.port = sock.getsockname()[1]
            self._sockets[key] = sock
        token = uuid.uuid4().hex
        log = self.logs / f"{key.replace('/', '.')}.{token[:8]}.log"
        admin = f"/tmp/kz-{token[:20]}.sock"  # Unix socket paths must stay short
        base, adapters = local or (server.base, server.adapters)
        pod = listen_loopback()
        downloads = self.state_dir / "replicas" / token[:12]
        command = [
            self.python, "-m", MODEL_SERVER, "--base", _local_base(base), "--base-name", server.base_name,
            *(f"--adapter={name}={path}" for name, path in adapters),
            "--fd", str(sock.fileno()), "--pod-fd", str(pod.fileno()), "--admin-socket", admin,
            "--instance", token, "--max-tokens", str(self.max_tokens),
        ]  # fmt: skip
        if server.runtime_lora:
            command += ["--runtime-lora", "--download-dir", str(downloads)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | (credentials or {})
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=(sock.fileno(), pod.fileno()),
                start_new_session=True,
                env=env,
            )
        pod_port = int(pod.getsockname()[1])
        pod.close()  # the instance holds it now
        instance = Instance(process.pid, admin, server.digest, token, str(log), pod_port)
        entry.instances.append(instance)
        self.save()
        return instance

    async def healthy(self, instance: Instance) -> bool:
        try:
            transport = httpx.AsyncHTTPTransport(uds=instance.admin)
            async with httpx.AsyncClient(transport=transport, timeout=2.0) as client:
                response = await client.get("http://model-server/health")
            return response.status_code == 200 and response.json().get("instance") == instance.token
        except (httpx.HTTPError, ValueError):
            return False

    async def stop(self, entry: Entry, instance: Instance, grace: float = 10.0) -> None:
        """SIGUSR1 (stop taking connections, as a pod leaves its Service's endpoints), a moment for what
        it accepted to arrive, SIGTERM (it finishes what it is answering), SIGKILL after ``grace``."""
        steps = ((signal.SIGUSR1, DRAIN_SECONDS), (signal.SIGTERM, grace), (signal.SIGKILL, 5.0))
        for sig, wait in steps:
            if not alive(instance):
                break
            try:
                os.kill(instance.pid, sig)
            except ProcessLookupError:
                break
            if sig == signal.SIGUSR1:  # draining: the process stays; give its last connections time
                await asyncio.sleep(wait)
                continue
            for _ in range(int(wait / 0.1)):
                if not alive(instance):
                    break
                await asyncio.sleep(0.1)
        Path(instance.admin).unlink(missing_ok=True)
        if instance in entry.instances:
            entry.instances.remove(instance)
        self.save()

    async def forget(self, key: str) -> None:
        """Stop every instance of ``key``, close its socket and drop it from the state."""
        entry = self.entries.get(key)
        if entry is not None:
            for instance in list(entry.instances):
                await self.stop(entry, instance)
            del self.entries[key]
            self.save()
        sock = self._sockets.pop(key, None)
        if sock is not None:
            sock.close()

    def url(self, key: str) -> str | None:
        entry = self.entries.get(key)
        return f"http://127.0.0.1:{entry.port}" if entry else None

    @staticmethod
    def log_tail(instance: Instance, size: int = 1500) -> str:
        path = Path(instance.log)
        return path.read_text(errors="replace")[-size:] if path.exists() else ""


def _local_base(base: str) -> str:
    if base.startswith("tiny://"):
        from trainer.tiny import resolve

        return str(resolve(base))
    return base
