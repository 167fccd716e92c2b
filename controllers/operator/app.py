"""The operator process: Kopf settings, the four kinds, leader election and the run loop.

``operator/main.py`` (the image's entrypoint) and ``kaizen up`` both call ``run``. It watches every
namespace unless given a list (the chart's ``operator.watchNamespaces``, namespaced mode): an object
applied in a namespace nobody listed is then ignored, so the default is all of them. Kopf keeps its
progress in annotations under ``kaizen.dev/`` (the status schema is strict and would prune Kopf's
own status fields), and its peering is off: the Lease in controllers.runtime.leader decides who acts.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from controllers.api import experiment, learningpolicy, shadowmodel, trainingrun
from controllers.clients import objectstore
from controllers.clients.router import RouterClient
from controllers.operator import handlers
from controllers.operator.dispatch import Kind
from controllers.operator.resync import resync
from controllers.reconcile import runs
from controllers.reconcile.deps import Dependencies, Settings
from controllers.runtime.health import serve_health
from controllers.runtime.kube import Kube, load_configuration
from controllers.runtime.leader import LeaderElector
from controllers.runtime.metrics import OperatorMetrics
from controllers.store.db import make_engine, session_factory

log = logging.getLogger("kaizen.operator")
LEASE_SECONDS = 15.0  # how long a leader's Lease lasts unrenewed


def kinds_for(settings: Settings) -> list[Kind]:
    """The four kinds, each with its reconcile and how often it runs."""
    from controllers.reconcile import experiments, policies, shadows

    rest = settings.rest_seconds
    return [
        Kind(
            learningpolicy.INFO,
            policies.reconcile,
            settings.policy_poll_seconds,
            rest,
            policies.forget_deleted,
        ),
        Kind(trainingrun.INFO, runs.reconcile, settings.poll_seconds, rest),
        Kind(shadowmodel.INFO, shadows.reconcile, settings.poll_seconds, rest),
        Kind(experiment.INFO, experiments.reconcile, settings.experiment_poll_seconds, rest),
    ]


async def build_dependencies(settings: Settings, kubeconfig: str | None = None) -> Dependencies:
    kube = Kube(load_configuration(kubeconfig))
    engine = make_engine(settings.database_url)
    return Dependencies(
        settings=settings,
        kube=kube,
        engine=engine,
        factory=session_factory(engine),
        router=RouterClient(
            settings.gateway_url, settings.gateway_token, token_file=settings.gateway_token_file
        ),
        metrics=OperatorMetrics(),
    )


async def run(
    settings: Settings,
    *,
    namespaces: Sequence[str] = (),
    lease_namespace: str,
    kubeconfig: str | None = None,
    health_port: int | None = None,
    metrics_port: int | None = None,
    lease_seconds: float = LEASE_SECONDS,
    stop: asyncio.Event | None = None,
) -> None:
    """Lead or wait, then run the handlers until the Lease is lost (then wait again) or ``stop``.

    ``namespaces`` empty: every namespace (Kopf's cluster-wide mode, the watch index lists across all)."""
    namespaces = list(namespaces)
    log.info("watching %s", ", ".join(namespaces) if namespaces else "all namespaces")
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # Kopf's login reads it too
    deps = await build_dependencies(settings, kubeconfig)
    await asyncio.to_thread(objectstore.warm_up)
    # What is imported and built by now lives as long as the process (the kubernetes client alone
    # brings a thousand model classes): keep it out of the cyclic collector, whose full passes would
    # otherwise walk all of it, 150-300 ms each, every few seconds once a thousand objects keep the
    # operator busy (bench/operator_scale.py) — a stall for every handler in flight.
    gc.collect()
    gc.freeze()
    if metrics_port:
        deps.metrics.serve(metrics_port)
    identity = os.environ.get("KAIZEN_POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    elector = LeaderElector(deps.kube, lease_namespace, "kaizen-operator", identity, lease_seconds)
    stop = stop or asyncio.Event()
    leading = False
    health = await serve_health(health_port, lambda: leading) if health_port else None
    try:
        while not stop.is_set():
            await _first(elector.acquire(), stop.wait())
            if stop.is_set():
                break
            leading = True
            lost = asyncio.Event()
            halt = asyncio.Event()
            holder = asyncio.create_task(elector.hold(lost))
            relay = asyncio.create_task(_relay(lost, stop, halt))
            pollers = [asyncio.create_task(resync(kind, deps, namespaces)) for kind in kinds_for(settings)]
            await handlers.operate(kinds_for(settings), deps, namespaces, kubeconfig, halt)
            leading = False
            for task in (holder, relay, *pollers):
                task.cancel()
            if not lost.is_set():
                break  # a signal stopped Kopf (it takes SIGTERM over): stop, do not lead again
    finally:
        if health is not None:
            health.close()
        await deps.kube.close()
        await deps.router.close()
        deps.engine.dispose()


async def _relay(lost: asyncio.Event, stop: asyncio.Event, halt: asyncio.Event) -> None:
    await _first(lost.wait(), stop.wait())
    halt.set()


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
