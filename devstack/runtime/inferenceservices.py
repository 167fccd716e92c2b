"""The InferenceService stand-in: serves each InferenceService with a real local model server process.

Reconciling one InferenceService: read its plan (base, served name, adapters); if the newest server
instance runs that plan and answers, it is Ready — older instances (a rollout's previous server) are
stopped then; if it is still loading, wait; if it died, report why and start it again after a
backoff; if the plan changed, start a new instance on the same port beside the current one. Deleting
the InferenceService stops its servers. Status follows KServe's shape (see ``isvc_plan``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from controllers.api.kinds import INFERENCE_SERVICES
from controllers.runtime.kube import Kube, KubeError
from devstack.runtime import isvc_plan
from devstack.runtime.kube import Key, merge_patch
from devstack.runtime.servers import Entry, Supervisor, alive

log = logging.getLogger(__name__)
LOADING_POLL = 0.5
LIVENESS_POLL = 2.0


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
        newest = entry.instances[-1] if entry.instances else None
        if newest is None and (wait := self._backoff_left(name)) > 0:
            return wait
        if newest is None or newest.plan != wanted.digest:
            await self.supervisor.start(name, entry, wanted)
            log.info("InferenceService %s: starting a server for plan %s", name, wanted.digest)
            url = f"http://127.0.0.1:{entry.port}"  # rebound if the runtime restarted since the last server
            await self._write(isvc, url, ready=await self._older_ready(entry), up_to_date=False, loading=True)
            return LOADING_POLL
        if await self.supervisor.healthy(newest):
            for older in entry.instances[:-1]:
                await self.supervisor.stop(entry, older)
            self._crashes.pop(name, None)
            self._restart_at.pop(name, None)
            await self._write(isvc, url, ready=True, up_to_date=True)
            return LIVENESS_POLL
        if alive(newest):
            await self._write(isvc, url, ready=await self._older_ready(entry), up_to_date=False, loading=True)
            return LOADING_POLL
        crashes = self._crashes[name] = self._crashes.get(name, 0) + 1
        delay = min(2.0**crashes, 30.0)  # then it starts again, backing off as a crash-looping pod does
        self._restart_at[name] = time.monotonic() + delay
        message = f"model server exited: {Supervisor.log_tail(newest)}"
        await self.supervisor.stop(entry, newest)
        log.warning("InferenceService %s: %s", name, message)
        await self._write(
            isvc,
            url,
            ready=await self._older_ready(entry),
            up_to_date=False,
            reason="RuntimeUnhealthy",
            message=message,
        )
        return delay

    def _backoff_left(self, name: str) -> float:
        return max(0.0, self._restart_at.get(name, 0.0) - time.monotonic())

    async def _older_ready(self, entry: Entry) -> bool:
        return any([await self.supervisor.healthy(i) for i in entry.instances[:-1]])

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
