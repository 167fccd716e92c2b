"""What the stand-in controllers add to Kaizen's one Kubernetes client: an informer and CRD installs.

The local runtime talks to the API server the way a controller does — list, then watch from the
list's resourceVersion, relist when the watch expires — and writes status through the status
subresource with merge patches, all through ``controllers.runtime.kube.Kube``, the operator's own
client: one client, one set of errors, one set of credentials (an ordinary kubeconfig here).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from controllers.runtime.kube import Kube, KubeError, Resource, load_configuration, without_empty_strings

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name)
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")


def connect(kubeconfig: Path) -> Kube:
    """The client, with the credentials of ``kubeconfig`` (token or client certificate)."""
    return Kube(load_configuration(str(kubeconfig)))


async def merge_patch(
    kube: Kube, resource: Resource, obj: dict[str, Any], patch: dict[str, Any], subresource: str | None = None
) -> None:
    """A merge patch of ``obj``; its empty strings become nulls, which the old local server accepts."""
    meta = obj["metadata"]
    await kube.patch(
        resource, meta["namespace"], meta["name"], without_empty_strings(patch, as_null=True), subresource
    )


async def ensure_crd(kube: Kube, crd: dict[str, Any], timeout: float = 30.0) -> None:
    """Create or replace a CRD (no client-side apply: upstream CRDs exceed the annotation limit it
    needs) and wait until it is Established and its resource is served."""
    name = crd["metadata"]["name"]
    crd = without_empty_strings(crd)
    existing, created = await kube.ensure(CRDS, crd)
    if not created:
        version = existing["metadata"]["resourceVersion"]
        await kube.replace(CRDS, {**crd, "metadata": {**crd["metadata"], "resourceVersion": version}})
    deadline = asyncio.get_running_loop().time() + timeout
    while not _established(await kube.get(CRDS, None, name) or {}):
        await _wait_until(deadline, f"CRD {name} not Established after {timeout:.0f}s")
    spec = crd["spec"]
    served = next(v["name"] for v in spec["versions"] if v.get("storage"))
    collection = Resource(spec["group"], served, spec["names"]["plural"])
    while True:  # Established comes a moment before the new resource is served
        try:
            async with aclosing(kube.pages(collection, None, limit=1)) as pages:
                await anext(pages)
            return
        except KubeError as error:
            if error.status != 404:
                raise
        await _wait_until(deadline, f"CRD {name} not served after {timeout:.0f}s")


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


async def _wait_until(deadline: float, message: str) -> None:
    if asyncio.get_running_loop().time() > deadline:
        raise KubeError(504, message)
    await asyncio.sleep(0.2)


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


@dataclass
class Informer:
    """A cache of one resource kept current by list + watch; ``notify`` is told every key that changed
    (and, after each list, every key there is or was)."""

    kube: Kube
    resource: Resource
    notify: Callable[[Key], None]
    cache: dict[Key, dict[str, Any]] = field(default_factory=dict)
    synced: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while True:
            try:
                version = await self._relist()
                while True:  # watch until it expires, then resume from the last version seen
                    version = await self._watch(version)
            except asyncio.CancelledError:
                raise
            except (KubeError, httpx.HTTPError, ValueError) as error:
                log.info("%s: relisting after %s", self.resource.plural, error)
                await asyncio.sleep(1.0)

    async def _relist(self) -> str:
        fresh: dict[Key, dict[str, Any]] = {}
        version = ""
        async for page in self.kube.pages(self.resource, None):
            fresh.update((key_of(item), item) for item in page.items)
            version = page.version
        for key in set(self.cache) | set(fresh):
            self.notify(key)
        self.cache = fresh
        self.synced.set()
        return version

    async def _watch(self, version: str) -> str:
        async for event in self.kube.watch(self.resource, None, version, seconds=60):
            obj = event["object"]
            version = obj["metadata"]["resourceVersion"]
            if event["type"] == "BOOKMARK":
                continue
            key = key_of(obj)
            log.debug("%s %s %s/%s", self.resource.plural, event["type"], *key)
            if event["type"] == "DELETED":
                self.cache.pop(key, None)
            else:
                self.cache[key] = obj
            self.notify(key)
        return version
