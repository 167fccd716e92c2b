"""The envtest tier: a real etcd + kube-apiserver for the session, the generated CRDs installed.

Each test gets its own namespace. When a test fails, the Kaizen objects in its namespace and the
tail of the API server's log are printed, so a CI failure can be read without rerunning it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.controlplane import ControlPlane
from tests.schemas import CRD_DIR

VIEWER = "kaizen-viewer"  # a user with no RBAC bindings


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    plane.start(extra_users={VIEWER: ["kaizen:viewers"]})
    try:
        plane.install_crds(sorted(CRD_DIR.glob("*.yaml")))
        yield plane
    finally:
        plane.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    if request.node.stash.get(_FAILED, False):
        dump = control_plane.kubectl("get", "kaizen", "-n", name, "-o", "yaml", check=False)
        log = Path(control_plane.workdir / "kube-apiserver.log").read_text()[-4000:]
        print(
            f"\n--- kaizen objects in {name} ---\n{dump.stdout}{dump.stderr}\n--- kube-apiserver.log (tail) ---\n{log}"
        )
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
