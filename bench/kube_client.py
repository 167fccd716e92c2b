"""The operator's hand-written Kubernetes client against lightkube and kubernetes_asyncio, side by side.

Kaizen keeps its own small async client (``controllers.runtime.kube``: httpx, plain REST, dicts in and
out). It earns its place only if it beats a maintained library on what the operator asks of it: GET
one custom object, LIST a namespace in pages of 100, JSON-merge-PATCH the status subresource, CREATE
if absent (409 answered by a GET), read and replace its leader-election Lease, and watch. So each
library sits behind the calls kube.py offers (get, list by labels, pages, watch, patch, create-if-
absent, status patch, replace, delete; one namespace or all), written here as the operator would need
them: lightkube's AsyncClient with generic resources, kubernetes_asyncio's CustomObjectsApi, all three
answering plain dicts. Each is measured in the same run against the same real kube-apiserver:

- import time and the resident memory that importing, constructing the client and its first GET
  add, in fresh interpreters (three alternating; the fastest import and the median memory over rounds,
  after one discarded round that compiles every module): alone, and beside Kopf, which the operator's process holds anyway and which
  imports the ``kubernetes`` package that kube.py reads credentials with. The project's own modules
  that kube.py imports (the Resource type) are loaded before the baseline: they are not the client;
- p50/p95 latency and the client's own CPU per call, the three interleaved call by call (who goes
  first rotates) after a few warm-up calls: GET, LIST of 200 TrainingRuns, status merge-patch, CREATE,
  create-if-absent of an existing object, and a Lease renewal (GET + PUT, as leader.py does);
- the lines of our own code each needs: kube.py for the hand-written client, the adapter class below
  for each library (code only: no blank lines, comments or docstrings).

Before timing, every client passes the same checks (404 is None, 409 returns the existing object,
paging and label selectors see all 200, the patches land, delete says whether there was anything to
delete, the Lease is replaced, a watch sees a change), so each adapter does what kube.py does. RESULT
lines are ratios library/handwritten: above 1, the library is slower, larger or longer.

    .venv/bin/python bench/kube_client.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

# Only the standard library at module level: a --footprint child measures from here.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LISTED, CREATED = "bench-list", "bench-create"  # the LIST namespace holds exactly LIST_SIZE runs
LIST_SIZE, PAGE, WARMUP = 200, 100, 5
SIZES = {"quick": {"calls": 20, "rounds": 1}, "full": {"calls": 200, "rounds": 6}}


class Kind(NamedTuple):
    group: str
    version: str
    kind: str
    plural: str


RUNS = Kind("kaizen.dev", "v1alpha1", "TrainingRun", "trainingruns")
LEASES = Kind("coordination.k8s.io", "v1", "Lease", "leases")
Body = dict[str, Any]


def handwritten_module() -> Any:
    from controllers.runtime import kube

    return kube


def project_imports() -> list[str]:
    """The project's own modules that kube.py imports (such as the Resource type): not the client,
    so every footprint child loads them before it measures, whichever client it measures."""
    import ast

    path = ROOT / "controllers" / "runtime" / "kube.py"
    return [
        node.module
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "controllers"
    ]


class Handwritten:
    """Kaizen's own client behind the bench's calls (glue only: its lines are kube.py's)."""

    name = "handwritten"

    @staticmethod
    def load() -> None:
        handwritten_module()

    @classmethod
    async def open(cls, kubeconfig: Path) -> Handwritten:
        kube = handwritten_module()
        return cls(kube, kube.Kube(kube.load_configuration(str(kubeconfig))))

    def __init__(self, module: Any, client: Any) -> None:
        self.module, self.client = module, client
        self.resources: dict[Kind, Any] = {}

    def _resource(self, kind: Kind) -> Any:
        if kind not in self.resources:
            self.resources[kind] = self.module.Resource(kind.group, kind.version, kind.plural)
        return self.resources[kind]

    async def get(self, kind: Kind, namespace: str, name: str) -> Body | None:
        return await self.client.get(self._resource(kind), namespace, name)

    async def list(
        self, kind: Kind, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[Body]:
        return await self.client.list(self._resource(kind), namespace, labels)

    async def pages(
        self, kind: Kind, namespace: str | None, limit: int
    ) -> AsyncIterator[tuple[list[Body], str]]:
        async for page in self.client.pages(self._resource(kind), namespace, limit):
            yield page.items, page.version

    async def watch(
        self, kind: Kind, namespace: str | None, version: str, seconds: int
    ) -> AsyncIterator[Body]:
        async for event in self.client.watch(self._resource(kind), namespace, version, seconds):
            yield event

    async def patch(self, kind: Kind, namespace: str, name: str, patch: Body) -> Body:
        return await self.client.patch(self._resource(kind), namespace, name, patch)

    async def ensure(self, kind: Kind, body: Body) -> tuple[Body, bool]:
        return await self.client.ensure(self._resource(kind), body)

    async def patch_status(self, kind: Kind, namespace: str, name: str, status: Body) -> Body:
        return await self.client.patch_status(self._resource(kind), namespace, name, status)

    async def replace(self, kind: Kind, body: Body) -> Body:
        return await self.client.replace(self._resource(kind), body)

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        return await self.client.delete(self._resource(kind), namespace, name)

    async def close(self) -> None:
        await self.client.close()


class Lightkube:
    """What would replace kube.py with lightkube: its AsyncClient and generic resources, dicts in and out."""

    name = "lightkube"

    @staticmethod
    def load() -> None:
        import lightkube.generic_resource  # noqa: F401

    @classmethod
    async def open(cls, kubeconfig: Path) -> Lightkube:
        import lightkube

        try:
            config = lightkube.KubeConfig.from_service_account()
        except lightkube.ConfigError:
            config = lightkube.KubeConfig.from_file(kubeconfig)
        return cls(lightkube.AsyncClient(config))

    def __init__(self, client: Any) -> None:
        from lightkube import ALL_NS, ApiError
        from lightkube.generic_resource import create_namespaced_resource
        from lightkube.types import CascadeType, PatchType

        self.client, self.error, self.merge = client, ApiError, PatchType.MERGE
        self.all_namespaces, self.background = ALL_NS, CascadeType.BACKGROUND
        self.create_class = create_namespaced_resource
        self.classes: dict[Kind, Any] = {}

    def _class(self, kind: Kind) -> Any:
        if kind not in self.classes:
            self.classes[kind] = self.create_class(kind.group, kind.version, kind.kind, kind.plural)
        return self.classes[kind]

    def _scope(self, namespace: str | None) -> str:
        return self.all_namespaces if namespace is None else namespace  # None is lightkube's default one

    async def get(self, kind: Kind, namespace: str, name: str) -> Body | None:
        try:
            return await self.client.get(self._class(kind), name, namespace=namespace)
        except self.error as error:
            if error.status.code == 404:
                return None
            raise

    async def list(
        self, kind: Kind, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[Body]:
        return [
            item
            async for item in self.client.list(
                self._class(kind), namespace=self._scope(namespace), labels=labels
            )
        ]

    async def pages(
        self, kind: Kind, namespace: str | None, limit: int
    ) -> AsyncIterator[tuple[list[Body], str]]:
        # lightkube follows the continue tokens itself and hides the pages: cut its stream again.
        listing = self.client.list(self._class(kind), namespace=self._scope(namespace), chunk_size=limit)
        batch: list[Body] = []
        yielded = False
        async for item in listing:
            item.get("metadata", {}).pop("managedFields", None)
            batch.append(item)
            if len(batch) == limit:
                yield batch, listing.resourceVersion
                batch, yielded = [], True
        if batch or not yielded:
            yield batch, listing.resourceVersion

    async def watch(
        self, kind: Kind, namespace: str | None, version: str, seconds: int
    ) -> AsyncIterator[Body]:
        events = self.client.watch(
            self._class(kind),
            namespace=self._scope(namespace),
            resource_version=version,
            server_timeout=seconds,
        )
        try:
            async for kind_of_event, obj in events:
                yield {"type": kind_of_event, "object": obj}
        finally:
            await events.aclose()

    async def patch(self, kind: Kind, namespace: str, name: str, patch: Body) -> Body:
        return await self.client.patch(
            self._class(kind), name, patch, namespace=namespace, patch_type=self.merge
        )

    async def ensure(self, kind: Kind, body: Body) -> tuple[Body, bool]:
        try:
            return await self.client.create(self._class(kind)(body)), True
        except self.error as error:
            if error.status.code != 409:
                raise
            conflict = error
        meta = body["metadata"]
        existing = await self.get(kind, meta["namespace"], meta["name"])
        if existing is None:  # deleted between the two calls
            raise conflict
        return existing, False

    async def patch_status(self, kind: Kind, namespace: str, name: str, status: Body) -> Body:
        status_class = self._class(kind).Status
        return await self.client.patch(
            status_class, name, {"status": status}, namespace=namespace, patch_type=self.merge
        )

    async def replace(self, kind: Kind, body: Body) -> Body:
        return await self.client.replace(self._class(kind)(body))

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        try:
            await self.client.delete(self._class(kind), name, namespace=namespace, cascade=self.background)
            return True
        except self.error as error:
            if error.status.code == 404:
                return False
            raise

    async def close(self) -> None:
        await self.client.close()


class KubernetesAsyncio:
    """What would replace kube.py with kubernetes_asyncio: its CustomObjectsApi, dicts in and out."""

    name = "kubernetes_asyncio"
    merge_patch = "application/merge-patch+json"

    @staticmethod
    def load() -> None:
        import kubernetes_asyncio.client
        import kubernetes_asyncio.config
        import kubernetes_asyncio.watch  # noqa: F401

    @classmethod
    async def open(cls, kubeconfig: Path) -> KubernetesAsyncio:
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        return cls(client.ApiClient(configuration))

    def __init__(self, api_client: Any) -> None:
        from kubernetes_asyncio.client import CustomObjectsApi
        from kubernetes_asyncio.client.exceptions import ApiException

        self.api_client, self.api, self.error = api_client, CustomObjectsApi(api_client), ApiException

    def _lister(self, kind: Kind, namespace: str | None) -> tuple[Callable[..., Any], tuple[str, ...]]:
        if namespace is None:
            return self.api.list_cluster_custom_object, (kind.group, kind.version, kind.plural)
        return self.api.list_namespaced_custom_object, (kind.group, kind.version, namespace, kind.plural)

    async def get(self, kind: Kind, namespace: str, name: str) -> Body | None:
        try:
            return await self.api.get_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name
            )
        except self.error as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self, kind: Kind, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[Body]:
        lister, args = self._lister(kind, namespace)
        selector = ",".join(f"{k}={v}" for k, v in labels.items()) if labels else None
        return (await lister(*args, label_selector=selector))["items"]

    async def pages(
        self, kind: Kind, namespace: str | None, limit: int
    ) -> AsyncIterator[tuple[list[Body], str]]:
        lister, args = self._lister(kind, namespace)
        token = None
        while True:
            body = await lister(*args, limit=limit, _continue=token)
            for item in body["items"]:
                item.get("metadata", {}).pop("managedFields", None)
            meta = body.get("metadata") or {}
            yield body["items"], str(meta.get("resourceVersion") or "")
            token = meta.get("continue")
            if not token:
                return

    async def watch(
        self, kind: Kind, namespace: str | None, version: str, seconds: int
    ) -> AsyncIterator[Body]:
        from kubernetes_asyncio import watch

        lister, args = self._lister(kind, namespace)
        async with watch.Watch() as stream:
            events = stream.stream(
                lister, *args, resource_version=version, timeout_seconds=seconds, allow_watch_bookmarks=True
            )
            async for event in events:
                yield {"type": event["type"], "object": event["object"]}

    async def patch(self, kind: Kind, namespace: str, name: str, patch: Body) -> Body:
        # Without the explicit type a dict body goes out as a JSON *patch* (the first type listed).
        return await self.api.patch_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural, name, patch, _content_type=self.merge_patch
        )

    async def ensure(self, kind: Kind, body: Body) -> tuple[Body, bool]:
        meta = body["metadata"]
        try:
            created = await self.api.create_namespaced_custom_object(
                kind.group, kind.version, meta["namespace"], kind.plural, body
            )
            return created, True
        except self.error as error:
            if error.status != 409:
                raise
            conflict = error
        existing = await self.get(kind, meta["namespace"], meta["name"])
        if existing is None:  # deleted between the two calls
            raise conflict
        return existing, False

    async def patch_status(self, kind: Kind, namespace: str, name: str, status: Body) -> Body:
        return await self.api.patch_namespaced_custom_object_status(
            kind.group,
            kind.version,
            namespace,
            kind.plural,
            name,
            {"status": status},
            _content_type=self.merge_patch,
        )

    async def replace(self, kind: Kind, body: Body) -> Body:
        meta = body["metadata"]
        return await self.api.replace_namespaced_custom_object(
            kind.group, kind.version, meta["namespace"], kind.plural, meta["name"], body
        )

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        try:
            await self.api.delete_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name, propagation_policy="Background"
            )
            return True
        except self.error as error:
            if error.status == 404:
                return False
            raise

    async def close(self) -> None:
        await self.api_client.close()


Client = Handwritten | Lightkube | KubernetesAsyncio
CLIENTS: list[type[Client]] = [Handwritten, Lightkube, KubernetesAsyncio]
LIBRARIES = [Lightkube.name, KubernetesAsyncio.name]


def training_run(name: str, namespace: str) -> Body:
    return {
        "apiVersion": f"{RUNS.group}/{RUNS.version}",
        "kind": RUNS.kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {"kaizen.dev/policy": "coder-dpo"}},
        "spec": {
            "policyRef": "coder-dpo",
            "trigger": "Threshold",
            "training": {
                "baseModel": {
                    "name": "Qwen/Qwen2.5-Coder-7B-Instruct",
                    "uri": "s3://models/qwen2.5-coder-7b",
                },
                "method": "DPO",
                "lora": {"rank": 16, "alpha": 32, "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
                "scaling": {"submission": "RayJob", "workers": 2, "gpusPerWorker": 1},
                "outputUri": "s3://kaizen-adapters/coder",
            },
            "data": {"minReward": 0.5},
            "gate": {"minPreferenceAccuracy": 0.65},
        },
    }


def run_status(attempts: int) -> Body:
    """A status of the size the operator writes: a few conditions, the dataset, the job."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [
        {"type": kind, "status": "True", "reason": reason, "message": message,
         "lastTransitionTime": now, "observedGeneration": 1}
        for kind, reason, message in (
            ("Ready", "Succeeded", "The adapter passed its gate; ShadowModel created."),
            ("DataReady", "SnapshotWritten", "1,024 training rows, 113 held out."),
            ("Trained", "JobSucceeded", "RayJob finished after 1 attempt."),
        )
    ]  # fmt: skip
    return {
        "observedGeneration": 1,
        "attempts": attempts,
        "jobName": "coder-dpo-0001-a1",
        "conditions": conditions,
        "dataset": {"uri": "s3://kaizen-data/coder/0001", "contentHash": "sha256:" + "ab" * 32,
                    "watermark": now, "trainRows": 1024, "evalRows": 113},
    }  # fmt: skip


# -- (1) footprint: one fresh interpreter per measurement ---------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def footprint(name: str, beside: str, kubeconfig: str, namespace: str, obj: str) -> int:
    """In a fresh interpreter: import, construct, one GET; print what each step added as JSON.

    ``beside`` "kopf" first imports what the operator's process holds anyway (Kopf, which imports
    the ``kubernetes`` package), so that the figures are what the client adds to the operator."""
    import importlib

    for module in project_imports():
        importlib.import_module(module)
    if beside == "kopf":
        # Kopf imports kubernetes_asyncio at start whenever it is installed (to recognise its
        # models); hidden here, so that its cost is counted where it is used, not in the baseline.
        sys.modules["kubernetes_asyncio"] = None
        import kopf  # noqa: F401

        del sys.modules["kubernetes_asyncio"]
    client_class = next(c for c in CLIENTS if c.name == name)
    before = rss_mb()
    started = time.perf_counter()
    client_class.load()
    import_s = time.perf_counter() - started

    async def use() -> tuple[float, float]:
        client = await client_class.open(Path(kubeconfig))
        built = rss_mb()
        if await client.get(RUNS, namespace, obj) is None:
            raise RuntimeError(f"{name}: {namespace}/{obj} not found")
        called = rss_mb()
        await client.close()
        return built, called

    built, called = asyncio.run(use())
    print(json.dumps({"import_s": import_s, "construct_mb": built - before, "first_get_mb": called - before}))
    return 0


def measure_footprints(kubeconfig: Path, rounds: int) -> dict[str, dict[str, float]]:
    """client -> {import_s, construct_mb, first_get_mb, and the same with the suffix _kopf}."""
    runs: dict[str, list[dict[str, float]]] = {c.name: [] for c in CLIENTS}
    for round_ in range(-1, rounds):  # round -1 compiles every module and warms the disk cache
        shift = round_ % len(CLIENTS)
        for client_class in CLIENTS[shift:] + CLIENTS[:shift]:
            figures: dict[str, float] = {}
            for beside in ("nothing", "kopf") if round_ >= 0 else ("kopf",):
                command = [sys.executable, __file__, "--footprint", client_class.name, beside,
                           str(kubeconfig), LISTED, "run-000"]  # fmt: skip
                result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
                if result.returncode != 0:
                    raise RuntimeError(f"footprint of {client_class.name} failed:\n{result.stderr[-3000:]}")
                suffix = "_kopf" if beside == "kopf" else ""
                answer = json.loads(result.stdout.strip().splitlines()[-1])
                figures.update({key + suffix: value for key, value in answer.items()})
            if round_ >= 0:
                runs[client_class.name].append(figures)
    # Import times: the fastest round (what the import costs, not what else the machine was doing);
    # memory: the median (it hardly moves).
    return {
        name: {
            key: (min if key.startswith("import_s") else statistics.median)(run[key] for run in done)
            for key in done[0]
        }
        for name, done in runs.items()
    }


# -- (2) latency: the three clients interleaved, call by call ------------------------------------------


async def collect(client: Client, namespace: str | None) -> tuple[list[Body], str]:
    items: list[Body] = []
    version = ""
    async for page, page_version in client.pages(RUNS, namespace, PAGE):
        items.extend(page)
        version = page_version
    return items, version


async def check(client: Client, serial: Callable[[], int]) -> None:
    """What kube.py does, done by this client too; raises on the first difference."""
    name = client.name
    slug = name.replace("_", "-")
    assert await client.get(RUNS, LISTED, "no-such-run") is None, f"{name}: 404 is not None"
    body = training_run(f"check-{slug}", CREATED)
    first, created = await client.ensure(RUNS, body)
    again, created_again = await client.ensure(RUNS, body)
    assert created, f"{name}: ensure did not create"
    assert not created_again, f"{name}: ensure created an existing object again"
    assert first["metadata"]["uid"] == again["metadata"]["uid"], f"{name}: ensure made a second object"
    labelled = await client.list(RUNS, LISTED, {"kaizen.dev/policy": "coder-dpo"})
    assert len(labelled) == LIST_SIZE, f"{name}: the label selector found {len(labelled)}"
    assert not await client.list(RUNS, LISTED, {"kaizen.dev/policy": "other"}), f"{name}: selector ignored"
    everywhere, _ = await collect(client, None)
    assert len(everywhere) > LIST_SIZE, f"{name}: listing every namespace saw {len(everywhere)}"
    note = {"metadata": {"annotations": {"kaizen.dev/checked-by": slug}}}
    annotated = await client.patch(RUNS, CREATED, body["metadata"]["name"], note)
    assert annotated["metadata"]["annotations"]["kaizen.dev/checked-by"] == slug, f"{name}: patch"
    assert await client.delete(RUNS, CREATED, body["metadata"]["name"]), f"{name}: delete found nothing"
    assert not await client.delete(RUNS, CREATED, body["metadata"]["name"]), f"{name}: deleted twice"
    items, version = await collect(client, LISTED)
    assert len(items) == LIST_SIZE, f"{name}: paging saw {len(items)} of {LIST_SIZE}"
    assert version, f"{name}: no list resourceVersion to watch from"
    attempts = serial()
    patched = await client.patch_status(RUNS, LISTED, "run-002", run_status(attempts))
    assert patched["status"]["attempts"] == attempts, f"{name}: status patch did not land"
    assert patched["spec"]["trigger"] == "Threshold", f"{name}: status patch touched the spec"
    lease, _ = await client.ensure(LEASES, lease_body(slug))
    lease["spec"]["renewTime"] = micro_time()
    replaced = await client.replace(LEASES, dict(lease))
    assert replaced["metadata"]["resourceVersion"] != lease["metadata"]["resourceVersion"], f"{name}: lease"

    async def first_change() -> str:
        async with contextlib.aclosing(client.watch(RUNS, LISTED, version, 30)) as events:
            async for event in events:
                if event["object"]["metadata"]["name"] == "run-002":
                    return str(event["type"])
        return "none"

    seen = await asyncio.wait_for(first_change(), 15)
    assert seen == "MODIFIED", f"{name}: the watch saw {seen}"


def lease_body(slug: str) -> Body:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": f"bench-{slug}", "namespace": LISTED},
        "spec": {"holderIdentity": slug, "leaseDurationSeconds": 15, "acquireTime": micro_time(),
                 "renewTime": micro_time(), "leaseTransitions": 0},
    }  # fmt: skip


def micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def operations(serial: Callable[[], int]) -> dict[str, Callable[[Client], Awaitable[Any]]]:
    async def get(client: Client) -> None:
        assert await client.get(RUNS, LISTED, "run-000") is not None

    async def list_(client: Client) -> None:
        items, _ = await collect(client, LISTED)
        assert len(items) == LIST_SIZE

    async def patch_status(client: Client) -> None:
        await client.patch_status(RUNS, LISTED, "run-001", run_status(serial()))  # a real change each time

    async def create(client: Client) -> None:
        _, created = await client.ensure(RUNS, training_run(f"new-{serial()}", CREATED))
        assert created

    async def ensure_existing(client: Client) -> None:
        _, created = await client.ensure(RUNS, training_run("existing", CREATED))
        assert not created

    async def lease_renew(client: Client) -> None:  # what leader.py does every few seconds
        lease = await client.get(LEASES, LISTED, f"bench-{client.name.replace('_', '-')}")
        assert lease is not None
        lease["spec"]["renewTime"] = micro_time()
        await client.replace(LEASES, lease)

    return {"get": get, "list": list_, "patch_status": patch_status, "create": create,
            "ensure_existing": ensure_existing, "lease_renew": lease_renew}  # fmt: skip


async def measure_latencies(kubeconfig: Path, calls: int) -> dict[str, dict[str, dict[str, float]]]:
    """op -> client -> {p50, p95, cpu} in milliseconds."""
    counter = itertools.count(1)
    serial = counter.__next__
    clients: list[Client] = [await client_class.open(kubeconfig) for client_class in CLIENTS]
    try:
        hand = clients[0]
        await asyncio.gather(
            *(hand.patch_status(RUNS, LISTED, f"run-{i:03d}", run_status(1)) for i in range(LIST_SIZE))
        )
        await hand.ensure(RUNS, training_run("existing", CREATED))
        for client in clients:
            await check(client, serial)
        results: dict[str, dict[str, dict[str, float]]] = {}
        for op_name, op in operations(serial).items():
            wall: dict[str, list[float]] = {c.name: [] for c in clients}
            cpu: dict[str, list[float]] = {c.name: [] for c in clients}
            for i in range(-WARMUP, calls):
                shift = i % len(clients)
                for client in clients[shift:] + clients[:shift]:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    await op(client)
                    if i >= 0:
                        wall[client.name].append((time.perf_counter() - started) * 1000)
                        cpu[client.name].append((time.process_time() - cpu_started) * 1000)
            results[op_name] = {
                name: {"p50": statistics.median(wall[name]), "p95": p95(wall[name]), "cpu": statistics.median(cpu[name])}
                for name in wall
            }  # fmt: skip
        return results
    finally:
        for client in clients:
            await client.close()


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94]


# -- (3) lines of our own code ---------------------------------------------------------------------------


def code_lines(source: str) -> int:
    """Lines that hold code: blank lines, comments and docstrings left out."""
    import ast
    import io
    import tokenize

    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    skip = {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    }
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def own_lines() -> dict[str, int]:
    import inspect

    return {
        Handwritten.name: code_lines(Path(handwritten_module().__file__).read_text()),
        Lightkube.name: code_lines(inspect.getsource(Lightkube)),
        KubernetesAsyncio.name: code_lines(inspect.getsource(KubernetesAsyncio)),
    }


def versions() -> str:
    from importlib.metadata import version

    return (
        f"lightkube {version('lightkube')} (lightkube-models {version('lightkube-models')},"
        f" httpx2 {version('httpx2')}, msgspec {version('msgspec')});"
        f" kubernetes_asyncio {version('kubernetes_asyncio')} (aiohttp {version('aiohttp')});"
        f" handwritten: httpx {version('httpx')}, kubernetes {version('kubernetes')} (config loading)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds; the same RESULT lines")
    parser.add_argument(
        "--footprint",
        nargs=5,
        metavar=("CLIENT", "BESIDE", "KUBECONFIG", "NS", "NAME"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.footprint:  # a fresh interpreter: measure one client's import and construction
        return footprint(*args.footprint)

    from devstack.controlplane import ControlPlane

    size = SIZES["quick" if args.quick else "full"]
    calls, rounds = size["calls"], size["rounds"]
    plane = ControlPlane(Path(tempfile.mkdtemp(prefix="kaizen-kube-client-")) / "plane")
    plane.start()
    try:
        plane.install_crds([ROOT / "crds" / "trainingruns.kaizen.dev.yaml"])
        for namespace in (LISTED, CREATED):
            plane.kubectl("create", "namespace", namespace)
        runs = [training_run(f"run-{i:03d}", LISTED) for i in range(LIST_SIZE)]
        plane.kubectl(
            "create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": runs})
        )
        print(f"versions: {versions()}")
        print(
            f"kube-apiserver 1.{plane.server_minor_version()} on loopback; {calls} calls per operation per client,"
            f" interleaved (first client rotating) after {WARMUP} warm-up calls; LIST = {LIST_SIZE} TrainingRuns"
            f" in pages of {PAGE}; footprint: fresh interpreters, {rounds} per client and setting (import: the"
            " fastest, memory: the median), alone and beside kopf (which the operator's process holds anyway)"
        )
        started = time.monotonic()
        latency = asyncio.run(measure_latencies(plane.kubeconfig, calls))
        latency_s = time.monotonic() - started
        feet = measure_footprints(plane.kubeconfig, rounds)
        footprint_s = time.monotonic() - started - latency_s
        lines = own_lines()
    finally:
        plane.stop()

    print(f"latency phase {latency_s:.0f}s, footprint phase {footprint_s:.0f}s; ms per call, MB resident")
    names = [c.name for c in CLIENTS]
    print(f"{'':<28}" + "".join(f"{name:>20}" for name in names))
    rows = [
        ("import s", lambda n: feet[n]["import_s"], "{:.3f}"),
        ("RSS +construct MB", lambda n: feet[n]["construct_mb"], "{:.1f}"),
        ("RSS +first GET MB", lambda n: feet[n]["first_get_mb"], "{:.1f}"),
        ("beside kopf: import s", lambda n: feet[n]["import_s_kopf"], "{:.3f}"),
        ("beside kopf: RSS +first GET", lambda n: feet[n]["first_get_mb_kopf"], "{:.1f}"),
        ("own code lines", lambda n: lines[n], "{:d}"),
    ]
    for op in latency:
        for stat in ("p50", "p95", "cpu"):
            rows.append((f"{op} {stat} ms", lambda n, op=op, stat=stat: latency[op][n][stat], "{:.2f}"))
    for label, value, fmt in rows:
        print(f"{label:<28}" + "".join(f"{fmt.format(value(name)):>20}" for name in names))

    def result(metric: str, value: Callable[[str], float]) -> None:
        base = value(Handwritten.name)
        for library in LIBRARIES:
            print(f"RESULT kube_client {metric} {library}/handwritten={value(library) / base:.2f}")

    result("import_time", lambda n: feet[n]["import_s"])
    result("memory", lambda n: feet[n]["construct_mb"])
    result("memory_after_first_get", lambda n: feet[n]["first_get_mb"])
    result("import_time_beside_kopf", lambda n: feet[n]["import_s_kopf"])
    result("memory_beside_kopf", lambda n: feet[n]["first_get_mb_kopf"])
    result("own_code_lines", lambda n: lines[n])
    for op in latency:
        for stat in ("p50", "p95"):
            result(f"{op}_{stat}", lambda n, op=op, stat=stat: latency[op][n][stat])
        result(f"{op}_cpu", lambda n, op=op: latency[op][n]["cpu"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
