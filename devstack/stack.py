"""Everything ``kaizen up`` runs on one machine, started in order and recorded so ``kaizen down`` can
stop it from another process: the control plane, the SQLite store, a Ray head, the gateway/router, the
local runtime (RayJob and InferenceService stand-ins) and the operator.

Each part is the same class the e2e tests use; here they run detached from the terminal and their
process ids go to ``<state>/stack.json`` (no secret in it). The operator watches every namespace, as
the chart's default install does. The gateway's token key is ``<state>/token-keys/default`` (folder
0700, file 0600; kept across restarts so tokens stay valid) and its URL is ``<state>/gateway-url``:
the places ``kaizen token create`` and ``kaizen experiment report`` look
(``controllers.cli.localstack``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from controllers.api.identity import Role
from controllers.cli import localstack
from controllers.gateway import auth
from controllers.store import migrate
from devstack import identities
from devstack.controlplane import ControlPlane
from devstack.gateway import LOCAL_ROUTE_HOSTS, GatewayProcess
from devstack.localray import LocalRayHead
from devstack.objectstore import ObjectStore
from devstack.operator import OperatorProcess
from devstack.processes import pid_alive, terminate_pid
from devstack.runtime import LocalRuntime

ROOT = Path(__file__).resolve().parent.parent
CRDS = ROOT / "crds"
UPSTREAM_CRDS = (
    ROOT.parent / "shared" / "upstream-crds"
)  # used when present; the runtime has its own otherwise
STATE_FILE = "stack.json"
BUCKET = "kaizen"


@dataclass
class StackState:
    kubeconfig: str
    database_url: str
    gateway_url: str
    keys_dir: str  # the gateway's token key folder (localstack.KEYS_DIR)
    ray_dashboard: str
    pids: dict[str, int]
    ray_group: int
    watch: list[str] = field(default_factory=list)  # the namespaces the operator watches; [] is all
    object_store: str = ""  # the S3-protocol endpoint snapshots and adapters live in


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress:
        progress(message)


def _control_plane(plane_dir: Path, progress: Callable[[str], None] | None) -> ControlPlane:
    """The running control plane of an earlier ``kaizen up``, or a new one."""
    if (plane_dir / "state.json").exists() and ControlPlane.load(plane_dir).running():
        return ControlPlane.load(plane_dir)
    _say(
        progress, "starting etcd + kube-apiserver + kube-controller-manager (first run builds them: ~15 min)"
    )
    plane = ControlPlane(plane_dir)
    plane.start()
    return plane


def _operator_identity(plane: ControlPlane, state_dir: Path) -> Path:
    """The gateway roles, and a week's token of ServiceAccount kaizen-system/kaizen-operator in a file."""
    identities.install_gateway_roles(plane)
    token_file = state_dir / "operator-gateway-token"
    token_file.write_text(
        identities.service_account_token(
            plane, identities.OPERATOR_NAMESPACE, identities.OPERATOR_ACCOUNT, Role.OPERATOR, 7 * 24 * 3600
        )
    )
    token_file.chmod(0o600)
    return token_file


def token_keys(state_dir: Path) -> Path:
    """The gateway's key folder with its one key (made on the first ``kaizen up``, kept after): mode
    0700 and 0600, as the chart mounts its token Secret, where ``kaizen token create`` finds it."""
    keys = state_dir / localstack.KEYS_DIR
    keys.mkdir(mode=0o700, exist_ok=True)
    keys.chmod(0o700)
    key = keys / localstack.SIGNING_KEY
    if not key.is_file() or not key.read_text().strip():
        key.touch(mode=0o600)
        key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    return keys


def person_token(keys: Path, subject: str, namespace: str, role: Role = Role.REVIEWER) -> str:
    """A day's token for a person of the demo (a reviewer by default), signed with the local key."""
    keyring = auth.Keyring.from_env({"KAIZEN_TOKEN_KEYS_DIR": str(keys)})
    return auth.issue(keyring, subject, 24 * 3600, role=role, namespaces=(namespace,))


def agent_token(keys: Path, agent: str, namespace: str) -> str:
    """A week's agent token for the demo's synthetic agents, signed with the local key (never stored)."""
    keyring = auth.Keyring.from_env({"KAIZEN_TOKEN_KEYS_DIR": str(keys)})
    return auth.issue(keyring, agent, 7 * 24 * 3600, role=Role.AGENT, namespaces=(namespace,))


def _gateway(plane: ControlPlane, database_url: str, keys: Path, state_dir: Path) -> GatewayProcess:
    """The gateway as in a cluster (ServiceAccount tokens reviewed by the API server), except that its
    routes lead to the stand-in's model servers on 127.0.0.1, which only a local gateway allows."""
    gateway = GatewayProcess(
        database_url,
        "",
        state_dir / "gateway.log",
        kubeconfig=plane.kubeconfig,
        route_allowed_hosts=LOCAL_ROUTE_HOSTS,
        env={"KAIZEN_TOKEN_KEYS_DIR": str(keys), "KAIZEN_TOKEN_SECRET": ""},
    )
    gateway.start()
    (state_dir / localstack.GATEWAY_URL_FILE).write_text(gateway.url + "\n")
    return gateway


def _object_store(
    plane: ControlPlane, state_dir: Path, progress: Callable[[str], None] | None
) -> ObjectStore:
    """The bucket snapshots and adapters go to, and in namespace default the Secret and ServiceAccount
    that the demo policy names to reach it (the operator, trainer and model servers get nothing else)."""
    _say(progress, "starting an S3-protocol object store (bucket s3://kaizen, authentication on)")
    store = ObjectStore(state_dir / "objectstore", relay=False, detached=True).start()
    store.create_bucket(BUCKET)
    items = store.kube_objects("default")
    plane.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return store


def start(state_dir: Path, progress: Callable[[str], None] | None = None) -> StackState:
    """Start every part (the control plane may already run); returns where to reach them."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    plane = _control_plane(state_dir / "control-plane", progress)
    plane.install_crds(sorted(CRDS.glob("*.yaml")))
    database_url = f"sqlite:///{state_dir / 'kaizen.db'}"
    migrate.upgrade(database_url)
    keys = token_keys(state_dir)
    store = _object_store(plane, state_dir, progress)
    _say(progress, "starting a local Ray head (2 CPUs)")
    # The trainer's "cluster" cannot see the operator's scratch folder, as a pod cannot see another's disk.
    (state_dir / "data").mkdir(exist_ok=True)
    ray = LocalRayHead(num_cpus=2, hidden=(state_dir / "data",))
    ray.start()
    assert ray._process is not None
    _say(progress, "starting the gateway (ingest API + router) on SQLite")
    gateway = _gateway(plane, database_url, keys, state_dir)
    assert gateway._process is not None
    _say(progress, "starting the local runtime (RayJob and InferenceService stand-ins)")
    runtime = LocalRuntime(
        plane.kubeconfig,
        state_dir / "runtime",
        ray_address=ray.dashboard_url,
        ray_token=ray.token,
        upstream_crds=UPSTREAM_CRDS if UPSTREAM_CRDS.is_dir() else None,
    )
    runtime.start()
    # The operator calls the gateway as its ServiceAccount, with a token the API server minted and
    # the gateway checks with a TokenReview.
    token_file = _operator_identity(plane, state_dir)
    _say(progress, "starting the operator (as ServiceAccount kaizen-system/kaizen-operator, all namespaces)")
    operator = OperatorProcess(
        kubeconfig=plane.kubeconfig,
        database_url=database_url,
        gateway_url=gateway.url,
        gateway_token="",
        gateway_token_file=str(token_file),
        data_root=state_dir / "data",
        log=state_dir / "operator.log",
        lease_namespace="default",
        namespaces=(),  # every namespace, as the chart's default install
    )
    operator.start()
    pids = {"gateway": gateway._process.pid, "runtime": runtime.pid or 0, "operator": operator.pid or 0}
    pids["objectstore"] = store.pid
    state = StackState(
        kubeconfig=str(plane.kubeconfig),
        database_url=database_url,
        gateway_url=gateway.url,
        keys_dir=str(keys),
        ray_dashboard=ray.dashboard_url,
        pids=pids,
        ray_group=ray._process.pid,
        object_store=store.endpoint,
    )
    (state_dir / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
    (state_dir / STATE_FILE).chmod(0o600)
    return state


def load(state_dir: Path) -> StackState | None:
    """What ``start`` recorded; None when nothing was (a file from an older version reads as far as it
    goes, so ``kaizen down`` can still stop what it names)."""
    path = state_dir.resolve() / STATE_FILE
    if not path.exists():
        return None
    recorded = json.loads(path.read_text())
    known = {f.name for f in fields(StackState)}
    return StackState(**{"keys_dir": "", **{k: v for k, v in recorded.items() if k in known}})


def stop(state_dir: Path, grace: float = 15.0) -> list[str]:
    """Stop what ``start`` recorded (operator first, so nothing acts on a half-stopped stack), then the
    control plane. Returns what was stopped."""
    state_dir = state_dir.resolve()
    stopped: list[str] = []
    state = load(state_dir)
    if state is not None:
        for name in ("operator", "runtime", "gateway", "objectstore"):
            pid = state.pids.get(name, 0)
            if pid and pid_alive(pid):
                terminate_pid(pid, grace)
                stopped.append(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.ray_group, signal.SIGTERM)
            time.sleep(2)
            os.killpg(state.ray_group, signal.SIGKILL)
        stopped.append("ray")
    plane_dir = state_dir / "control-plane"
    if (plane_dir / "state.json").exists():
        ControlPlane.load(plane_dir).stop()
        stopped.append("control plane")
    return stopped
