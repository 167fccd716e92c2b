"""Challengers join a warm shared base without a restart (issue 21's Shared-mode must-show).

The operator's own ShadowModel reconcile (``controllers.reconcile.shadows``) against the real API
server, the InferenceService stand-in with two replicas of the shared base, and adapters in the real
S3-protocol server behind the Secret and ServiceAccount KServe's storage initializer reads. A first
model makes the base; while a client hammers it on loopback, a second and a third join: the base's
server processes keep their pids, the client sees no failed request, each newcomer is Ready once both
replicas list it, and the time from its creation to Ready is printed. Rolling one back unloads it from
every replica, again without a restart.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from controllers.api import kinds
from controllers.api.shadowmodel import ShadowModel
from controllers.clients.router import RouterClient
from controllers.reconcile import shadows
from controllers.reconcile.deps import Dependencies, Settings
from controllers.reconcile.lora import replicas
from controllers.runtime.kube import Kube, load_configuration, without_empty_strings
from controllers.runtime.metrics import OperatorMetrics
from controllers.store import migrate
from controllers.store.db import make_engine, session_factory
from devstack.controlplane import ControlPlane
from devstack.objectstore import ObjectStore
from devstack.runtime import LocalRuntime
from tests.runtime.storage_support import BASE_NAME, adapter_spec, grant_storage, shadow_model, upload
from tests.runtime.support import SHADOW_MODELS, Cluster, random_adapter

SHARED = "tiny-shared"
REPLICAS = 2
JOIN_GOAL_SECONDS = 5.0  # AIBrix's documented figure; printed against it
JOIN_BOUND_SECONDS = 2 * JOIN_GOAL_SECONDS  # asserted: room for a loaded two-core test machine


def _deps(plane: ControlPlane, tmp_path: Path) -> Dependencies:
    url = f"sqlite:///{tmp_path / 'operator.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    settings = Settings(database_url=url, data_root=tmp_path)
    kube = Kube(load_configuration(str(plane.kubeconfig)))
    router = RouterClient("http://router.invalid")  # never called: these models name no policy
    return Dependencies(settings, kube, engine, session_factory(engine), router, OperatorMetrics())


async def _pass(deps: Dependencies, namespace: str, name: str) -> dict[str, Any]:
    """One reconcile of the ShadowModel, its status written as the operator's glue writes it."""
    body = await deps.kube.get(kinds.SHADOW_MODELS, namespace, name)
    assert body is not None
    outcome = await shadows.reconcile(body, ShadowModel.model_validate(body), deps)
    status = without_empty_strings(outcome.status.to_wire())
    await deps.kube.patch_status(kinds.SHADOW_MODELS, namespace, name, status)
    return status


def _ready(status: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


async def _until_ready(deps: Dependencies, namespace: str, name: str, timeout: float) -> float:
    """Reconcile ``name`` until Ready (as the operator's poll does); seconds from its creation."""
    body = await deps.kube.get(kinds.SHADOW_MODELS, namespace, name)
    assert body is not None
    deadline = time.monotonic() + timeout
    while not _ready(status := await _pass(deps, namespace, name)):
        assert time.monotonic() < deadline, (
            f"{name} not Ready after {timeout:.0f}s: {status.get('conditions')}"
        )
        await asyncio.sleep(0.1)  # the next pass of the operator's poll
    return time.monotonic()


class Hammer(threading.Thread):
    """A client sending completions to one served model through the Service address, one every
    ``interval`` seconds (or back to back when an answer takes longer). Traffic in flight during the
    joins is what catches a failed request; saturating the replicas would only slow the joins it
    watches on a two-core machine."""

    def __init__(self, url: str, model: str, limit: int = 2000, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.url, self.model, self.limit, self.interval = url, model, limit, interval
        self.stop_event = threading.Event()
        self.sent, self.failures = 0, []

    def run(self) -> None:
        body = {"model": self.model, "prompt": "def add", "max_tokens": 2, "temperature": 0}
        due = time.monotonic()
        with httpx.Client(timeout=30) as client:
            while not self.stop_event.wait(max(0.0, due - time.monotonic())) and self.sent < self.limit:
                due += self.interval
                self.sent += 1
                try:
                    reply = client.post(f"{self.url}/openai/v1/completions", json=body)
                    if reply.status_code != 200:
                        self.failures.append(f"{reply.status_code}: {reply.text[:200]}")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))


def _server_pids(runtime: LocalRuntime, namespace: str) -> list[int]:
    state = json.loads((runtime.state_dir / "state.json").read_text())
    return sorted(i["pid"] for i in state[f"{namespace}/{SHARED}"]["instances"])


def _listed(urls: list[str]) -> list[set[str]]:
    return [{c["id"] for c in httpx.get(f"{u}/v1/models", timeout=10).json()["data"]} for u in urls]


def test_challengers_join_a_warm_shared_base_without_a_restart_or_a_failed_request(
    control_plane: ControlPlane,
    runtime: LocalRuntime,
    cluster: Cluster,
    namespace: str,
    object_store: ObjectStore,
    bucket: str,
    models: dict[str, Path],
    tmp_path: Path,
) -> None:
    adapters = {"coder-1": models["adapter-a"], "coder-2": models["adapter-b"]}
    adapters["coder-3"] = random_adapter(models["base"], tmp_path / "adapter-c", seed=3)
    account = grant_storage(cluster, object_store, namespace)
    specs = {
        name: adapter_spec(
            models["base"], folder, upload(object_store, folder, f"{bucket}/{name}/adapter"),
            account=account, shared=SHARED, replicas=REPLICAS,
        )
        for name, folder in adapters.items()
    }  # fmt: skip
    asyncio.run(_scenario(control_plane, runtime, cluster, namespace, specs, tmp_path))


async def _scenario(
    plane: ControlPlane,
    runtime: LocalRuntime,
    cluster: Cluster,
    namespace: str,
    specs: dict[str, Any],
    tmp: Path,
) -> None:
    deps = _deps(plane, tmp)
    try:
        cluster.create(SHADOW_MODELS, namespace, shadow_model("coder-1", specs["coder-1"]))
        await _until_ready(deps, namespace, "coder-1", 180)  # the base starts cold: not measured
        urls = await replicas(deps.kube, namespace, SHARED)
        assert len(urls) == REPLICAS
        pids = _server_pids(runtime, namespace)
        service = (await deps.kube.get(kinds.INFERENCE_SERVICES, namespace, SHARED) or {})["status"]["url"]
        generation = (await deps.kube.get(kinds.INFERENCE_SERVICES, namespace, SHARED) or {})["metadata"][
            "generation"
        ]
        hammer = Hammer(service, "coder-1")
        hammer.start()
        joins = {}
        for name in ("coder-2", "coder-3"):
            created = time.monotonic()
            cluster.create(SHADOW_MODELS, namespace, shadow_model(name, specs[name]))
            joins[name] = await _until_ready(deps, namespace, name, 60) - created
        hammer.stop_event.set()
        hammer.join(60)
        for name, seconds in joins.items():
            print(
                f"JOIN {name} ready {seconds:.2f}s after creation on a warm shared base (goal <= {JOIN_GOAL_SECONDS}s)"
            )
        print(
            f"HAMMER {hammer.sent} requests to the champion during the joins, {len(hammer.failures)} failed"
        )
        assert hammer.failures == []
        assert hammer.sent > 0
        assert _server_pids(runtime, namespace) == pids  # no server restarted
        base = await deps.kube.get(kinds.INFERENCE_SERVICES, namespace, SHARED) or {}
        assert base["metadata"]["generation"] == generation  # the predictor never changed
        assert all({"coder-1", "coder-2", "coder-3", BASE_NAME} <= listed for listed in _listed(urls))
        assert max(joins.values()) <= JOIN_BOUND_SECONDS
        rogue = httpx.post(f"{urls[0]}/v1/unload_lora_adapter", json={"lora_name": "coder-1"}, timeout=10)
        assert rogue.status_code == 401  # the loaders take the operator's token only
        assert all("coder-1" in listed for listed in _listed(urls))

        await deps.kube.patch_status(kinds.SHADOW_MODELS, namespace, "coder-2", {"role": "RolledBack"})
        await _pass(deps, namespace, "coder-2")
        assert all("coder-2" not in listed for listed in _listed(urls))  # unloaded from every replica
        assert _server_pids(runtime, namespace) == pids
        reply = httpx.post(
            f"{service}/openai/v1/completions",
            json={"model": "coder-3", "prompt": "x", "max_tokens": 2},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
    finally:
        await deps.kube.close()
        await deps.router.close()
        deps.engine.dispose()
