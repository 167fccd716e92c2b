"""Leader election on a coordination.k8s.io Lease, as controller-runtime does it.

Two replicas must never act at once. Kopf's own peering lets equal-priority peers run side by side,
so the operator takes a Lease before it starts any handler, renews it while it runs, and stops
(so the pod restarts and queues for the Lease again) the moment a renewal fails for longer than the
lease lasts. The holder writes only with optimistic concurrency (resourceVersion), so two candidates
that race for an expired Lease cannot both win.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from controllers.runtime.kube import Kube, KubeError, Resource

LEASES = Resource("coordination.k8s.io", "v1", "leases")
log = logging.getLogger("kaizen.leader")


def _now() -> datetime:
    return datetime.now(UTC)


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expired(spec: dict[str, Any], now: datetime) -> bool:
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds") or 15
    return renewed is None or now > renewed + timedelta(seconds=duration)


class LeaderElector:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, duration: float = 15.0) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration = duration
        self.renew_every = duration / 3

    async def _try(self) -> bool:
        now = _now()
        lease = await self.kube.get(LEASES, self.namespace, self.name)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, int(self.duration)),
            "renewTime": _fmt(now),
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": _fmt(now), "leaseTransitions": 0},
            }
            try:
                await self.kube._call("POST", LEASES.path(self.namespace), json=body)
                return True
            except KubeError as error:
                if error.status == 409:
                    return False
                raise
        current = lease.get("spec") or {}
        mine = current.get("holderIdentity") == self.identity
        if not mine and not expired(current, now):
            return False
        if not mine:
            spec["acquireTime"] = _fmt(now)
            spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
        lease["spec"] = {**current, **spec}
        try:
            await self.kube.replace(LEASES, lease)  # carries resourceVersion: a racing writer gets 409
            return True
        except KubeError as error:
            if error.status == 409:
                return False
            raise

    async def acquire(self) -> None:
        """Wait until this process holds the Lease."""
        waited = False
        while True:
            try:
                if await self._try():
                    log.info("leading as %s", self.identity)
                    return
            except (KubeError, OSError) as error:
                log.warning("lease %s/%s: %s", self.namespace, self.name, error)
            if not waited:
                log.info("another replica leads; standing by")
                waited = True
            await asyncio.sleep(self.renew_every)

    async def hold(self, lost: asyncio.Event) -> None:
        """Renew until a renewal has failed for a whole lease duration (or another holder took it)."""
        last_ok = asyncio.get_running_loop().time()
        while not lost.is_set():
            await asyncio.sleep(self.renew_every)
            try:
                if await self._try():
                    last_ok = asyncio.get_running_loop().time()
                    continue
                log.error("lease taken by another replica; stopping")
                lost.set()
            except (KubeError, OSError) as error:
                log.warning("lease renewal failed: %s", error)
                if asyncio.get_running_loop().time() - last_ok > self.duration * 0.8:
                    log.error("could not renew the lease in time; stopping")
                    lost.set()
