"""The InferenceService stand-in: serves each InferenceService with a real local model server process.

Reconciling one InferenceService: read its plan (base, served name, adapters, ServiceAccount,
replicas); if the plan's replicas all run and answer, it is Ready — older instances (a rollout's
previous servers) are stopped then, and the predictor's EndpointSlices list the replicas; if they are
still loading, wait; if one died, report why and start it again after a backoff; if the plan changed,
fetch what is remote with the ServiceAccount's credentials (``storage_init``; a refusal is reported as
KServe's storage initializer does: Ready False, ModelLoadFailed, naming the URI) and start new
instances on the same port beside the current ones. The predictor's other containers (Kaizen's
LoRA loader) must be able to start as the kubelet would start them: a Secret or key their env names
that does not exist is CreateContainerConfigError, and nothing starts; the loader's token reaches
the model server, which then answers runtime LoRA calls only with it. Deleting
the InferenceService stops its servers. Status follows KServe's shape (see ``isvc_plan``).
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from controllers.api.kinds import INFERENCE_SERVICES
from controllers.runtime.kube import Kube, KubeError
from devstack.runtime import endpoints, isvc_plan, pods, storage_init
from devstack.runtime.kube import Key, merge_patch
from devstack.runtime.servers import Entry, Instance, Supervisor, alive

log = logging.getLogger(__name__)
LOADING_POLL = 0.5
LIVENESS_POLL = 2.0
LOADER_TOKEN_ENV = "KAIZEN_LOADER_TOKEN"  # controllers.builders.loader_sidecar's


async def sidecar_env(kube: Kube, isvc: dict[str, Any]) -> dict[str, str]:
    """The env of the predictor's extra containers, resolved as the kubelet resolves it (a missing
    Secret or key raises ``pods.PodConfigError``); the model server plays those containers too."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    namespace = isvc["metadata"]["namespace"]
    env: dict[str, str] = {}
    for container in predictor.get("containers") or []:
        objects = {
            (kind, name): await kube.get(pods.RESOURCES[kind], namespace, name)
            for kind, name in pods.container_references(container)
        }
        pod = pods.Pod("predictor", {**predictor, "containers": [container]})
        env.update(pods.container_env(pod, namespace, objects))
    return env


class InferenceServiceController:
    def __init__(self, kube: Kube, supervisor: Supervisor) -> None:
        self.kube, self.supervisor = kube, supervisor
        self._crashes: dict[str, int] = {}
        self._restart_at: dict[str, float] = {}

    async def forget_missing(self, present: set[Key]) -> None:
        """Stop servers whose InferenceService went away while the runtime was not watching."""
        for key in list(self.supervisor.entries):
            namespace, name = key.split("/", 1)
            if (namespace, name) not in present:
                await self.supervisor.forget(key)

    async def reconcile(self, key: Key, isvc: dict[str, Any] | None) -> float | None:
        name = "/".join(key)
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            if name in self.supervisor.entries:
                log.info("InferenceService %s is gone: stopping its servers", name)
            await self.supervisor.forget(name)
            self._crashes.pop(name, None)
            self._restart_at.pop(name, None)
            return None
        try:
            wanted = isvc_plan.plan(isvc)
        except isvc_plan.Unservable as unservable:
            await self._write(
                isvc,
                self._settled_url(name),
                ready=False,
                up_to_date=False,
                reason=unservable.reason,
                message=str(unservable),
            )
            return None
        entry = self.supervisor.entry(name, isvc["metadata"]["uid"])
        url = f"http://127.0.0.1:{entry.port}"
        current = [i for i in entry.instances if i.plan == wanted.digest]
        if len(current) < wanted.replicas:
            if (wait := self._backoff_left(name)) > 0:
                return wait
            return await self._start(name, isvc, entry, wanted, len(current))
        health = [await self.supervisor.healthy(i) for i in current]
        if all(health):
            for older in [i for i in entry.instances if i not in current]:
                await self.supervisor.stop(entry, older)
            self._crashes.pop(name, None)
            self._restart_at.pop(name, None)
            await endpoints.publish(self.kube, isvc, current)
            await self._write(isvc, url, ready=True, up_to_date=True)
            return LIVENESS_POLL
        dead = [i for i, ok in zip(current, health, strict=True) if not ok and not alive(i)]
        if not dead:
            await self._write(
                isvc, url, ready=await self._older_ready(entry, current), up_to_date=False, loading=True
            )
            return LOADING_POLL
        return await self._crashed(name, isvc, entry, dead, current)

    async def _start(
        self, name: str, isvc: dict[str, Any], entry: Entry, wanted: isvc_plan.ServerPlan, running: int
    ) -> float:
        """Fetch what is remote (the storage initializer), then start the missing replicas."""
        try:
            credentials = await storage_init.credentials(
                self.kube, isvc["metadata"]["namespace"], wanted.service_account
            )
            sidecars = await sidecar_env(self.kube, isvc)
            if LOADER_TOKEN_ENV in sidecars:
                credentials[LOADER_TOKEN_ENV] = sidecars[LOADER_TOKEN_ENV]
            local = await self._initialize(name, wanted, credentials)
        except (storage_init.StorageError, pods.PodConfigError) as failure:
            delay = self._back_off(name)
            # KServe's reasons (an enum in its CRD): a container that cannot start is RuntimeUnhealthy.
            reason = (
                "ModelLoadFailed" if isinstance(failure, storage_init.StorageError) else "RuntimeUnhealthy"
            )
            log.warning("InferenceService %s: %s", name, failure)
            await self._write(
                isvc, self._settled_url(name), ready=await self._older_ready(entry, []),
                up_to_date=False, reason=reason, message=str(failure),
            )  # fmt: skip
            return delay
        for _ in range(wanted.replicas - running):
            await self.supervisor.start(name, entry, wanted, local, credentials)
        log.info(
            "InferenceService %s: starting %d server(s) for plan %s",
            name,
            wanted.replicas - running,
            wanted.digest,
        )
        url = f"http://127.0.0.1:{entry.port}"  # rebound if the runtime restarted since the last server
        await self._write(isvc, url, ready=await self._older_ready(entry, []), up_to_date=False, loading=True)
        return LOADING_POLL

    async def _initialize(
        self, name: str, wanted: isvc_plan.ServerPlan, credentials: dict[str, str]
    ) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The plan's base and adapters as local paths: each s3:// URI fetched into a fresh folder of
        this plan (a folder left by an earlier attempt is fetched again, never trusted)."""
        folder = self.supervisor.state_dir / "storage" / name.replace("/", ".") / wanted.digest
        if folder.exists():
            shutil.rmtree(folder)
        fetched: dict[str, str] = {}

        async def local(uri: str) -> str:
            if not storage_init.is_remote(uri):
                return uri
            if uri not in fetched:
                target = folder / str(len(fetched))
                fetched[uri] = str(await storage_init.fetch_async(uri, target, credentials))
            return fetched[uri]

        base = await local(wanted.base)
        adapters = tuple([(adapter, await local(path)) for adapter, path in wanted.adapters])
        return base, adapters

    async def _crashed(
        self, name: str, isvc: dict[str, Any], entry: Entry, dead: list[Instance], current: list[Instance]
    ) -> float:
        delay = self._back_off(name)  # then they start again, backing off as a crash-looping pod does
        message = f"model server exited: {Supervisor.log_tail(dead[0])}"
        for instance in dead:
            await self.supervisor.stop(entry, instance)
        log.warning("InferenceService %s: %s", name, message)
        survivors = [i for i in current if i not in dead]
        await endpoints.publish(self.kube, isvc, [i for i in survivors if await self.supervisor.healthy(i)])
        await self._write(
            isvc, f"http://127.0.0.1:{entry.port}", ready=await self._older_ready(entry, dead),
            up_to_date=False, reason="RuntimeUnhealthy", message=message,
        )  # fmt: skip
        return delay

    def _back_off(self, name: str) -> float:
        crashes = self._crashes[name] = self._crashes.get(name, 0) + 1
        delay = min(2.0**crashes, 30.0)
        self._restart_at[name] = time.monotonic() + delay
        return delay

    def _backoff_left(self, name: str) -> float:
        return max(0.0, self._restart_at.get(name, 0.0) - time.monotonic())

    async def _older_ready(self, entry: Entry, excluded: list[Instance]) -> bool:
        """Whether some instance other than ``excluded`` (the ones being started) still answers."""
        return any([await self.supervisor.healthy(i) for i in entry.instances if i not in excluded])

    def _settled_url(self, name: str) -> str | None:
        entry = self.supervisor.entries.get(name)
        return self.supervisor.url(name) if entry and entry.instances else None

    async def _write(self, isvc: dict[str, Any], url: str | None, **state: Any) -> None:
        body = isvc_plan.status(isvc, url=url, **state)
        current = isvc.get("status") or {}
        if _same(current, body):
            return
        try:
            await merge_patch(self.kube, INFERENCE_SERVICES, isvc, {"status": body}, "status")
        except KubeError as error:
            if error.status != 404:
                raise


def _same(current: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether writing ``new`` would change nothing a reader cares about (times of unchanged conditions
    are kept by ``isvc_plan.status`` already; failure times are ignored here)."""

    def strip(status: dict[str, Any]) -> dict[str, Any]:
        model = dict(status.get("modelStatus") or {})
        model.pop("lastFailureInfo", None)
        kept = {k: v for k, v in status.items() if v is not None and k != "modelStatus"}
        return {**kept, "modelStatus": model}

    return strip(current) == strip(new)
