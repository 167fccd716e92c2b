"""The local runtime process: installs the RayJob and InferenceService CRDs, then runs both stand-ins.

One asyncio process with an informer and a work loop per kind. It writes ``runtime.json`` in its
state folder once the CRDs are installed and both caches are synced (that is what "started" means
to the Python API and to ``kaizen up``). A graceful stop (SIGTERM) also stops every model server it
runs; a crash leaves them running, to be adopted by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from controllers.api.kinds import INFERENCE_SERVICES, RAYJOBS
from controllers.clients.ray_jobs import RayJobsClient
from controllers.runtime.kube import Kube
from devstack.runtime.inferenceservices import InferenceServiceController
from devstack.runtime.kube import CRDS, Informer, connect, ensure_crd
from devstack.runtime.rayjobs import RayJobController
from devstack.runtime.servers import Supervisor
from devstack.runtime.workqueue import WorkQueue, run_controller
from devstack.upstream_crds import DIGEST_ANNOTATION, sources

log = logging.getLogger("kaizen.local.runtime")
READY_FILE = "runtime.json"


@dataclass(frozen=True)
class Settings:
    kubeconfig: Path
    state_dir: Path
    ray_address: str | None = None
    ray_token: str | None = None
    upstream_crds: Path | None = None
    install_crds: bool = True
    max_tokens: int = 64


async def install_crds(kube: Kube, folder: Path | None = None) -> list[str]:
    """Install (or update) the RayJob and InferenceService CRDs; upstream ones when ``folder`` has them.
    A CRD already installed from the same source is left as it is."""
    keep_cel = await kube.version() >= (1, 25)
    names = []
    for source in sources(folder, keep_cel=keep_cel):
        installed = await kube.get(CRDS, None, source.kind.crd_name) or {"metadata": {}}
        if (installed["metadata"].get("annotations") or {}).get(DIGEST_ANNOTATION) != source.digest:
            await ensure_crd(kube, source.crd())
        names.append(source.kind.crd_name)
    return names


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    ready_file = settings.state_dir / READY_FILE
    ready_file.unlink(missing_ok=True)
    kube = connect(settings.kubeconfig)
    ray = RayJobsClient(settings.ray_address, token=settings.ray_token) if settings.ray_address else None
    supervisor = Supervisor(settings.state_dir, max_tokens=settings.max_tokens)
    tasks: list[asyncio.Task[None]] = []
    try:
        if settings.install_crds:
            log.info("installed CRDs %s", await install_crds(kube, settings.upstream_crds))
        serving = InferenceServiceController(kube, supervisor)
        isvc_queue = WorkQueue()
        isvc_informer = Informer(kube, INFERENCE_SERVICES, isvc_queue.add)
        informers = [isvc_informer]
        tasks += [
            asyncio.create_task(isvc_informer.run()),
            asyncio.create_task(
                run_controller("InferenceService", isvc_informer, isvc_queue, serving.reconcile)
            ),
        ]
        if ray is not None and settings.ray_address:
            jobs = RayJobController(kube, ray, settings.ray_address)
            job_queue = WorkQueue()
            job_informer = Informer(kube, RAYJOBS, job_queue.add)
            informers.append(job_informer)
            tasks += [
                asyncio.create_task(job_informer.run()),
                asyncio.create_task(run_controller("RayJob", job_informer, job_queue, jobs.reconcile)),
            ]
        else:
            log.warning("no --ray-address: RayJobs are not run")
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers)), timeout=60)
        await serving.forget_missing(set(isvc_informer.cache))
        ready_file.write_text(json.dumps({"pid": os.getpid(), "rayJobs": ray is not None}))
        log.info("local runtime ready")
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for key in list(supervisor.entries):
            await supervisor.forget(key)
        ready_file.unlink(missing_ok=True)
        if ray is not None:
            await ray.aclose()
        await kube.close()
