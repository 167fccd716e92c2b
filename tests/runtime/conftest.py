"""The runtime tier: the stand-in controllers against a real API server, a real Ray head and real
model server processes. The control plane and Ray head fixtures are the other tiers' own; each test
gets a fresh runtime process (so a test may kill and restart it) and its own namespace, whose
RayJobs, InferenceServices and the runtime's log are printed when the test fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.controlplane import ControlPlane
from devstack.localray import LocalRayHead
from devstack.runtime import LocalRuntime
from tests.envtest.conftest import control_plane
from tests.runtime.support import Cluster, random_adapter, tiny_base
from tests.trainer.conftest import model_cache, ray_head
from tests.trainer.upstream import crd_dir

__all__ = ["control_plane", "model_cache", "ray_head"]
_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture(scope="session")
def cluster(control_plane: ControlPlane) -> Iterator[Cluster]:
    api = Cluster(control_plane)
    yield api
    api.http.close()


@pytest.fixture(scope="session")
def upstream_crds() -> Path:
    folder = crd_dir()
    if not (folder / "serving.kserve.io_inferenceservices.yaml").exists():
        pytest.fail(f"the upstream CRDs are missing at {folder}; put upstream-crds beside the checkout")
    return folder


@pytest.fixture
def namespace(control_plane: ControlPlane, cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"rt-{uuid.uuid4().hex[:10]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    if request.node.stash.get(_FAILED, False):
        print(f"\n--- objects in {name} ---\n{cluster.dump(name)}")
    # Deleted while this test's runtime still runs, so its finalizers and servers are seen to.
    cluster.delete_all(name)
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def runtime_factory(
    control_plane: ControlPlane,
    ray_head: LocalRayHead,
    upstream_crds: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[], LocalRuntime]]:
    """Makes runtimes on this test's state folder (a restarted one finds its predecessor's state);
    every one made is stopped at the end and its log printed if the test failed."""
    made: list[LocalRuntime] = []

    def make() -> LocalRuntime:
        runtime = LocalRuntime(
            kubeconfig=control_plane.kubeconfig,
            state_dir=tmp_path / "runtime",
            ray_address=ray_head.dashboard_url,
            ray_token=ray_head.token,
            upstream_crds=upstream_crds,
        )
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.stop()
    if request.node.stash.get(_FAILED, False) and made:
        print(f"\n--- runtime log (tail) ---\n{made[-1].log.read_text()[-6000:]}")


@pytest.fixture
def runtime(runtime_factory: Callable[[], LocalRuntime]) -> LocalRuntime:
    return runtime_factory().start()


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny base model and two different LoRA adapters for it, as Hugging Face folders."""
    root = tmp_path_factory.mktemp("models")
    base = tiny_base(root / "base")
    return {
        "base": base,
        "adapter-a": random_adapter(base, root / "adapter-a", seed=1),
        "adapter-b": random_adapter(base, root / "adapter-b", seed=2),
    }
