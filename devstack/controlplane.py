"""A real etcd + kube-apiserver on loopback, for tests and for `kaizen up`.

The binaries come from ``hack/kube-assets.sh`` (``KUBEBUILDER_ASSETS``, the cache, or a one-time build
from Debian's sources). Each control plane lives in its own folder: etcd data, the API server's
certificates, a static token file (an admin in ``system:masters`` plus any users a test asks for),
the service-account signing key, logs, a kubeconfig and ``state.json`` so that another process
(``kaizen down``) can stop it. Ports are free loopback ports picked at start.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from devstack.ports import free_port
from devstack.processes import pid_alive, terminate_pid

ROOT = Path(__file__).resolve().parent.parent
ASSETS_SCRIPT = ROOT / "hack" / "kube-assets.sh"
ADMIN = "kaizen-admin"


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or used; the message says what to look at."""


def find_assets() -> Path:
    """The folder holding ``etcd`` and ``kube-apiserver``, building them once if needed."""
    result = subprocess.run(["bash", str(ASSETS_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ControlPlaneError(
            "could not provide etcd + kube-apiserver; run `bash hack/kube-assets.sh` to see why:\n"
            + result.stderr[-2000:]
        )
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass
class User:
    """A static-token identity the API server accepts."""

    name: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass
class ControlPlane:
    """One local control plane rooted at ``workdir``."""

    workdir: Path
    assets: Path | None = None
    users: dict[str, User] = field(default_factory=dict)
    etcd_port: int = 0
    etcd_peer_port: int = 0
    api_port: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    # Popen handles of processes this object started (absent after load()); kept so they are reaped.
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, extra_users: Mapping[str, Sequence[str]] | None = None, timeout: float = 60.0) -> None:
        """Start etcd and the API server, wait until the server is ready, write the kubeconfig."""
        self.assets = self.assets or find_assets()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.users = {ADMIN: User(ADMIN, secrets.token_hex(16), ("system:masters",))}
        for name, groups in (extra_users or {}).items():
            self.users[name] = User(name, secrets.token_hex(16), tuple(groups))
        self._write_token_file()
        self._write_service_account_key()
        self.etcd_port, self.etcd_peer_port, self.api_port = free_port(), free_port(), free_port()
        self._spawn_all(timeout)

    def restart(self, down_seconds: float = 0.0, timeout: float = 60.0) -> None:
        """Stop every process, stay down ``down_seconds``, start again on the same ports and data:
        what clients see when a cluster's API server and etcd restart (connections drop, watches end,
        the stored objects and the users' tokens are the same afterwards)."""
        self.stop()
        time.sleep(down_seconds)
        self._spawn_all(timeout)

    def _spawn_all(self, timeout: float) -> None:
        self.pids["etcd"] = self._spawn("etcd", self._etcd_args(self.etcd_peer_port))
        self.pids["kube-apiserver"] = self._spawn("kube-apiserver", self._apiserver_args())
        self._save_state()
        try:
            self._wait_ready(timeout)
        except ControlPlaneError:
            self.stop()
            raise
        self.write_kubeconfig(self.kubeconfig, ADMIN)
        # The garbage collector follows owner references, so deleting a parent deletes its children
        # here as in a cluster; the namespace controller empties deleted namespaces.
        self.pids["kube-controller-manager"] = self._spawn(
            "kube-controller-manager", self._controller_manager_args()
        )
        self._save_state()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every process (controller manager, API server, etcd) and forget them. Safe to call twice."""
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            pid = self.pids.pop(name, None)
            child = self._children.pop(name, None)
            if child is not None:
                child.terminate()
                try:
                    child.wait(timeout)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            elif pid is not None:
                terminate_pid(pid, timeout)
        self._save_state()

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def load(cls, workdir: Path) -> ControlPlane:
        """The control plane that another process started in ``workdir``."""
        state = json.loads((workdir / "state.json").read_text())
        return cls(
            workdir=workdir,
            users={u["name"]: User(u["name"], u["token"], tuple(u["groups"])) for u in state["users"]},
            etcd_port=state["etcdPort"],
            etcd_peer_port=state.get("etcdPeerPort", 0),
            api_port=state["apiPort"],
            pids=state["pids"],
        )

    def running(self) -> bool:
        return bool(self.pids) and all(pid_alive(pid) for pid in self.pids.values())

    # -- use ---------------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def write_kubeconfig(self, path: Path, user: str) -> Path:
        """A kubeconfig that authenticates as ``user`` (one of the static-token users)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "kaizen-local", "cluster": {"server": self.server, "insecure-skip-tls-verify": True}}
            ],
            "users": [{"name": user, "user": {"token": self.users[user].token}}],
            "contexts": [{"name": "kaizen-local", "context": {"cluster": "kaizen-local", "user": user}}],
            "current-context": "kaizen-local",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def kubectl(
        self, *args: str, stdin: str | None = None, user: str = ADMIN, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane as ``user``."""
        config = (
            self.kubeconfig
            if user == ADMIN
            else self.write_kubeconfig(self.workdir / f"kubeconfig-{user}", user)
        )
        env = {**os.environ, "KUBECONFIG": str(config)}
        result = subprocess.run(
            ["kubectl", *args], input=stdin, capture_output=True, text=True, env=env, check=False, timeout=120
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def server_minor_version(self) -> int:
        info = httpx.get(
            f"{self.server}/version", verify=False, headers=self.auth_headers(ADMIN), timeout=5
        ).json()
        return int("".join(ch for ch in info["minor"] if ch.isdigit()))

    def install_crds(self, paths: Iterable[Path], timeout: float = 30.0) -> list[str]:
        """Apply CRD files and wait until each is Established; returns the CRD names.

        Servers before 1.25 do not know ``x-kubernetes-validations`` (and kubectl's client-side
        validation rejects it), so the rules are removed for them; they would be ignored anyway.
        """
        strip_cel = self.server_minor_version() < 25
        names = []
        for path in paths:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc is None:
                    continue
                if strip_cel:
                    doc = strip_key(doc, "x-kubernetes-validations")
                self.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
                names.append(doc["metadata"]["name"])
        for name in names:
            self.kubectl("wait", "--for=condition=Established", f"crd/{name}", f"--timeout={int(timeout)}s")
        self.wait_openapi_published(names, timeout)
        return names

    def wait_openapi_published(self, crd_names: Iterable[str], timeout: float = 30.0) -> None:
        """Wait until the server's OpenAPI document includes the CRDs' kinds (for ``kubectl explain``).

        The API server publishes a new CRD's schema a few seconds after it is Established.
        """
        wanted = {f"{name.split('.', 1)[1]}" for name in crd_names}
        kinds = {self._kind_of(name) for name in crd_names}
        deadline = time.monotonic() + timeout
        while True:
            document = httpx.get(
                f"{self.server}/openapi/v2", verify=False, headers=self.auth_headers(ADMIN), timeout=30
            ).json()
            published = {
                gvk["kind"]
                for definition in document.get("definitions", {}).values()
                for gvk in definition.get("x-kubernetes-group-version-kind", [])
                if gvk.get("group") in wanted
            }
            if kinds <= published:
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"OpenAPI still lacks {sorted(kinds - published)} after {timeout}s")
            time.sleep(0.5)

    def _kind_of(self, crd_name: str) -> str:
        result = self.kubectl("get", f"crd/{crd_name}", "-o", "jsonpath={.spec.names.kind}")
        return result.stdout.strip()

    # -- internals --------------------------------------------------------------------------------

    def auth_headers(self, user: str = ADMIN) -> dict[str, str]:
        """The Authorization header of one of this plane's users, for a direct HTTPS client."""
        return {"Authorization": f"Bearer {self.users[user].token}"}

    def _write_token_file(self) -> None:
        lines = [f'{u.token},{u.name},{u.name},"{",".join(u.groups)}"' for u in self.users.values()]
        (self.workdir / "tokens.csv").write_text("\n".join(lines) + "\n")
        (self.workdir / "tokens.csv").chmod(0o600)

    def _write_service_account_key(self) -> None:
        key, pub = self.workdir / "sa.key", self.workdir / "sa.pub"
        if not key.exists():
            subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], capture_output=True, check=True)
            subprocess.run(
                ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
                capture_output=True,
                check=True,
            )

    def _etcd_args(self, peer_port: int) -> list[str]:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        return [
            "--name=kaizen",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=kaizen={peer}",
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        return [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            f"--secure-port={self.api_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--cert-dir={self.workdir / 'certs'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.workdir / 'sa.pub'}",
            f"--service-account-signing-key-file={self.workdir / 'sa.key'}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            # The master Endpoints reconciler refuses loopback addresses and would log that every 10 s.
            "--endpoint-reconciler-type=none",
            # Events live an hour by default. `make chaos` runs for over an hour and then checks the
            # Event of every request a person made from the first minute on; an Event that expired
            # would read as one never posted (the 200-lifecycle run failed so at lifecycle 4).
            "--event-ttl=12h",
            "--v=1",
        ]

    def _controller_manager_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            "--controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token",
            f"--service-account-private-key-file={self.workdir / 'sa.key'}",
            f"--root-ca-file={self.workdir / 'certs' / 'apiserver.crt'}",
            "--leader-elect=false",
            "--port=0",  # no insecure serving port
            f"--secure-port={free_port()}",
            f"--cert-dir={self.workdir / 'kcm-certs'}",
            "--v=1",
        ]

    def _spawn(self, binary: str, args: list[str]) -> int:
        assert self.assets is not None
        path = self.assets / binary
        if not os.access(path, os.X_OK):
            self.stop()
            raise ControlPlaneError(
                f"{path} is missing; run `bash hack/kube-assets.sh` (or set KUBEBUILDER_ASSETS)"
            )
        with (self.workdir / f"{binary}.log").open("ab") as log:
            process = subprocess.Popen(
                [str(path), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the starting process (kaizen up) and is stopped by pid
            )
        self._children[binary] = process
        return process.pid

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            for name, pid in self.pids.items():
                if not pid_alive(pid):
                    raise ControlPlaneError(
                        f"{name} exited during start; see {self.workdir / (name + '.log')}"
                    )
            try:
                response = httpx.get(
                    f"{self.server}/readyz", verify=False, headers=self.auth_headers(ADMIN), timeout=2
                )
                if response.status_code == 200:
                    return
                last = f"{response.status_code}: {response.text[-300:]}"
            except httpx.HTTPError as error:
                last = str(error)
            time.sleep(0.2)
        raise ControlPlaneError(
            f"kube-apiserver not ready after {timeout}s ({last}); see {self.workdir}/*.log"
        )

    def _save_state(self) -> None:
        state: dict[str, Any] = {
            "etcdPort": self.etcd_port,
            "etcdPeerPort": self.etcd_peer_port,
            "apiPort": self.api_port,
            "pids": self.pids,
            "users": [
                {"name": u.name, "token": u.token, "groups": list(u.groups)} for u in self.users.values()
            ],
        }
        path = self.workdir / "state.json"
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)


def strip_key(node: Any, key: str) -> Any:
    """A copy of a JSON-like tree without ``key`` at any depth."""
    if isinstance(node, dict):
        return {k: strip_key(v, key) for k, v in node.items() if k != key}
    if isinstance(node, list):
        return [strip_key(v, key) for v in node]
    return node


if __name__ == "__main__":  # pragma: no cover - manual use: python -m devstack.controlplane DIR
    plane = ControlPlane(Path(sys.argv[1]).resolve())
    plane.start()
    print(f"export KUBECONFIG={plane.kubeconfig}")
