"""The e2e tier: the operator as a real process against a real kube-apiserver, PostgreSQL and gateway.

Given/When/Then helpers: ``World`` holds the parts of one test (its namespace, the operator process,
a gateway token) and offers ``apply``, ``get`` and ``wait_until`` (polling a condition, never sleeping
a fixed time). On failure the test's objects, the operator's log and the API server's log tail are
printed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.store import migrate
from devstack import identities
from devstack.controlplane import ControlPlane
from devstack.demo import Storage
from devstack.gateway import GatewayProcess
from devstack.localray import LocalRayHead
from devstack.objectstore import REGION, ObjectStore
from devstack.operator import OperatorProcess
from devstack.postgres import ThrowawayPostgres
from devstack.runtime import LocalRuntime
from tests.conftest import fresh_database
from tests.e2e.fastjob import write_shim
from tests.runtime.support import random_adapter, tiny_base
from tests.schemas import CRD_DIR

SECRET = "e2e-token-secret"
UPSTREAM_CRDS = Path(__file__).resolve().parents[3] / "shared" / "upstream-crds"
T = TypeVar("T")


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("e2e-plane"))
    plane.start()
    try:
        plane.install_crds(sorted(CRD_DIR.glob("*.yaml")))
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def database(postgres: ThrowawayPostgres) -> str:
    url = fresh_database(postgres)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def gateway(
    database: str, plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """The gateway as in a cluster: Kaizen tokens, and ServiceAccount tokens reviewed by the API server."""
    log = tmp_path_factory.mktemp("e2e-gateway") / "gateway.log"
    process = GatewayProcess(
        database,
        SECRET,
        log,
        kubeconfig=plane.kubeconfig,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def operator_token_file(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The operator's ServiceAccount token for the gateway (TokenRequest, the gateway's audience), as
    the chart projects it into the operator's pod; the full chaos run needs it to last a day."""
    identities.install_gateway_roles(plane)
    token = identities.service_account_token(
        plane, identities.OPERATOR_NAMESPACE, identities.OPERATOR_ACCOUNT, Role.OPERATOR, 24 * 3600
    )
    path = tmp_path_factory.mktemp("operator-identity") / "token"
    path.write_text(token)
    return str(path)


@pytest.fixture(scope="session")
def operator_roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where every test's operator keeps its local scratch files: a folder the Ray head (the trainer's
    "cluster") cannot see, as a trainer pod cannot see the operator pod's disk."""
    return tmp_path_factory.mktemp("operator-roots")


def namespace_storage(plane: ControlPlane, store: ObjectStore, namespace: str) -> Storage:
    """A bucket for the namespace, and the Secret + ServiceAccount a policy there names to reach it
    (the operator, the trainer's pods and the model servers get nothing else)."""
    bucket = store.create_bucket(f"kaizen-{namespace}")
    objects = store.kube_objects(namespace)
    plane.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    secret, account = (o["metadata"]["name"] for o in objects)
    access = {
        "secretRef": secret,
        "serviceAccountName": account,
        "endpoint": store.endpoint,
        "region": REGION,
    }
    return Storage(output_uri=f"{bucket}/runs", access=access)


@pytest.fixture(scope="session")
def ray_head(operator_roots: Path) -> Iterator[LocalRayHead]:
    head = LocalRayHead(num_cpus=2, hidden=(operator_roots,))
    head.start()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="session")
def runtime(
    plane: ControlPlane, ray_head: LocalRayHead, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRuntime]:
    process = LocalRuntime(
        plane.kubeconfig,
        tmp_path_factory.mktemp("runtime"),
        ray_address=ray_head.dashboard_url,
        ray_token=ray_head.token,
        upstream_crds=UPSTREAM_CRDS,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def fast_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fastjob")
    adapter = random_adapter(tiny_base(folder / "base"), folder / "adapter", seed=1)
    return write_shim(folder, adapter)


@dataclass
class World:
    plane: ControlPlane
    namespace: str
    operator: OperatorProcess
    gateway: GatewayProcess
    token: str
    storage: Storage
    expect_alive: bool = True

    def kubectl(self, *args: str, check: bool = True) -> str:
        return self.plane.kubectl(*args, "-n", self.namespace, check=check).stdout

    def apply(self, obj: dict[str, Any]) -> None:
        self.plane.kubectl("apply", "-n", self.namespace, "-f", "-", stdin=yaml.safe_dump(obj))

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        result = self.plane.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def items(self, kind: str) -> list[dict[str, Any]]:
        return list(json.loads(self.kubectl("get", kind, "-o", "json"))["items"])

    def wait_until(self, what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            assert self.operator.alive() or not self.expect_alive, (
                f"the operator died while waiting for {what}"
            )
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def condition(self, kind: str, name: str, type_: str = "Ready") -> dict[str, Any] | None:
        obj = self.get(kind, name)
        for condition in ((obj or {}).get("status") or {}).get("conditions", []):
            if condition["type"] == type_:
                return dict(condition)
        return None

    def route_config(self, policy: str) -> dict[str, Any]:
        """The gateway's route for ``policy``: its experiment and its variants' weights."""
        return dict(
            httpx.get(
                f"{self.gateway.url}/v1/routes/{self.namespace}/{policy}",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=10,
            ).json()["config"]
        )

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )


@pytest.fixture
def world(
    plane: ControlPlane,
    gateway: GatewayProcess,
    database: str,
    operator_token_file: str,
    object_store: ObjectStore,
    operator_roots: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[World]:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    plane.kubectl("create", "namespace", namespace)
    storage = namespace_storage(plane, object_store, namespace)
    # The tests act as the agents and the reviewers of their namespace: an admin token for it alone.
    # The full chaos run (`make chaos`) lasts over an hour: the token must outlive it.
    token = auth.issue(SECRET, "e2e", 24 * 3600, role=Role.ADMIN, namespaces=(namespace,))
    operator = OperatorProcess(
        kubeconfig=plane.kubeconfig,
        database_url=database,
        gateway_url=gateway.url,
        gateway_token="",
        gateway_token_file=operator_token_file,
        data_root=operator_roots / namespace,  # scratch only: hidden from the Ray "cluster"
        log=tmp_path / "operator.log",
        lease_namespace=namespace,
        namespaces=(namespace,),
    )
    operator.start()
    try:
        yield World(plane, namespace, operator, gateway, token, storage)
    finally:
        operator.stop()
        if getattr(request.node, "_e2e_failed", False):
            dump = plane.kubectl("get", "kaizen", "-n", namespace, "-o", "yaml", check=False).stdout
            print(f"\n--- kaizen objects in {namespace} ---\n{dump}")
            print(f"--- operator log (tail) ---\n{operator.log.read_text()[-6000:]}")
        plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call" and report.failed:
        item._e2e_failed = True  # type: ignore[attr-defined]
    return report
