"""What the resync loops know of every object of a kind, kept current by list + watch.

A resync pass needs, per object, only its name and whether it is at rest (each kind's ``KindInfo.at_rest`` in controllers.api):
the reconcile reads the object afresh anyway. Listing every object on every pass made each pass cost
as much as the namespace's whole history — two hundred finished lifecycles turned a one-second
Experiment pass into a read of megabytes, for the API server and for the operator. So each kind keeps
this small index instead: one paged list at start (and after the watch's resourceVersion expires),
then the watch's events, which cost what changes, not what exists. Only names and a flag are kept,
never the objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from controllers.runtime.kube import Kube, KubeError, Resource

log = logging.getLogger("kaizen.operator")

PAGE = 100


@dataclass(frozen=True)
class Entry:
    uid: str
    namespace: str
    name: str
    at_rest: bool

    def stub(self) -> dict[str, Any]:
        """Enough of the object for ``handlers.handle``, which reads the rest itself."""
        return {"metadata": {"uid": self.uid, "namespace": self.namespace, "name": self.name}}


class Index:
    def __init__(self, resource: Resource, at_rest: Callable[[dict[str, Any]], bool]) -> None:
        self.resource = resource
        self.at_rest = at_rest
        self.entries: dict[str, Entry] = {}  # uid -> entry
        self.synced = asyncio.Event()  # set once every scope has been listed
        self.lists = 0  # full lists read (at start, and after each expired watch)

    def entry(self, raw: dict[str, Any]) -> Entry | None:
        """The entry for an object as a list or a watch event shows it; None for one being deleted,
        which the API server (or the garbage collector) finishes without the operator."""
        meta = raw["metadata"]
        if meta.get("deletionTimestamp"):
            return None
        return Entry(meta.get("uid") or "", meta.get("namespace") or "", meta["name"], self.at_rest(raw))

    def observe(self, raw: dict[str, Any]) -> None:
        entry = self.entry(raw)
        if entry is None:
            self.drop(raw)
        else:
            self.entries[entry.uid] = entry

    def drop(self, raw: dict[str, Any]) -> None:
        self.entries.pop((raw.get("metadata") or {}).get("uid") or "", None)

    def replace_scope(self, namespace: str | None, listed: dict[str, Entry]) -> None:
        """After a fresh list of ``namespace`` (None: all): objects of that scope not in it are gone."""
        for uid, entry in list(self.entries.items()):
            if (namespace is None or entry.namespace == namespace) and uid not in listed:
                del self.entries[uid]
        self.entries.update(listed)

    async def run(self, kube: Kube, namespaces: list[str]) -> None:
        scopes: list[str | None] = list(namespaces) or [None]
        listed = [asyncio.Event() for _ in scopes]
        tasks = [
            asyncio.create_task(self._follow(kube, scope, done))
            for scope, done in zip(scopes, listed, strict=True)
        ]
        try:
            await asyncio.gather(*(done.wait() for done in listed))
            self.synced.set()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _follow(self, kube: Kube, namespace: str | None, listed: asyncio.Event) -> None:
        """List, then watch from the list's version; list again when the watch cannot resume."""
        while True:
            try:
                version = await self._list(kube, namespace)
                listed.set()
                while True:  # the server ends each watch after a while: resume where it stopped
                    async for event in kube.watch(self.resource, namespace, version):
                        obj = event["object"]
                        version = obj["metadata"].get("resourceVersion") or version
                        if event["type"] == "DELETED":
                            self.drop(obj)
                        elif event["type"] in ("ADDED", "MODIFIED"):
                            self.observe(obj)
            except (KubeError, OSError, httpx.HTTPError, ValueError) as error:
                # 410 Gone (the version expired), or the API server away for a moment: list anew.
                log.info("%s: listing again after %s", self.resource.plural, error)
                await asyncio.sleep(1.0)
            except Exception:  # an answer of a shape never seen: say so, but keep the index alive
                log.exception("%s: watch failed; listing again", self.resource.plural)
                await asyncio.sleep(5.0)

    async def _list(self, kube: Kube, namespace: str | None) -> str:
        fresh: dict[str, Entry] = {}
        version = ""
        async for page in kube.pages(self.resource, namespace, PAGE):
            for item in page.items:
                if (entry := self.entry(item)) is not None:
                    fresh[entry.uid] = entry
            version = page.version
        self.replace_scope(namespace, fresh)
        self.lists += 1
        return version
