"""The operator process: Kopf settings, the four kinds, leader election and the run loop.

``operator/main.py`` (the image's entrypoint) and ``kaizen up`` both call ``run``. Kopf keeps its
progress in annotations under ``kaizen.dev/`` (the status schema is strict and would prune Kopf's
own status fields), and its peering is off: the Lease in controllers.operator.leader decides who acts.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import kopf

from controllers.api import experiment, learningpolicy, shadowmodel, trainingrun
from controllers.operator import handlers, kinds, mining, runs
from controllers.operator import rest as at_rest
from controllers.operator.deps import Dependencies, Settings
from controllers.operator.health import serve_health
from controllers.operator.kube import Kube, load_configuration
from controllers.operator.leader import LeaderElector
from controllers.operator.metrics import OperatorMetrics
from controllers.operator.resync import resync
from controllers.operator.routes import RouterClient
from controllers.store.db import make_engine, session_factory

log = logging.getLogger("kaizen.operator")


WORKER_LIMIT = 32


@dataclass
class Memo:
    deps: Dependencies


def kinds_for(settings: Settings) -> list[handlers.Kind]:
    from controllers.operator import experiments, policies, shadows

    rest = settings.rest_seconds
    return [
        handlers.Kind(
            "LearningPolicy", kinds.POLICIES, learningpolicy.LearningPolicy,
            learningpolicy.LearningPolicyStatus, policies.reconcile, settings.policy_poll_seconds,
            at_rest.never, rest, forget=mining.forget_deleted,
        ),
        handlers.Kind(
            "TrainingRun", kinds.RUNS, trainingrun.TrainingRun, trainingrun.TrainingRunStatus,
            runs.reconcile, settings.poll_seconds, at_rest.training_run, rest, frozen_spec=True,
        ),
        handlers.Kind(
            "ShadowModel", kinds.SHADOW_MODELS, shadowmodel.ShadowModel, shadowmodel.ShadowModelStatus,
            shadows.reconcile, settings.poll_seconds, at_rest.shadow_model, rest,
        ),
        handlers.Kind(
            "Experiment", kinds.EXPERIMENTS, experiment.Experiment, experiment.ExperimentStatus,
            experiments.reconcile, settings.experiment_poll_seconds, at_rest.experiment, rest,
        ),
    ]  # fmt: skip


def build_registry(settings: Settings, kubeconfig: str | None = None) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    for kind in kinds_for(settings):
        handlers.register(registry, kind)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        # A private registry has none of Kopf's default handlers: log in with the same credentials as
        # the operator's own client (the pod's service account in a cluster, else the kubeconfig).
        config = load_configuration(kubeconfig)
        token = config.api_key.get("authorization") or config.api_key.get("BearerToken") or None
        return kopf.ConnectionInfo(
            server=config.host,
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            scheme="Bearer" if token else None,
            token=token.removeprefix("Bearer ") if token else None,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
        )

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=kinds.GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=kinds.GROUP, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{kinds.GROUP}/cleanup"
        settings.peering.standalone = True
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 300
        settings.watching.connect_timeout = 10
        settings.networking.request_timeout = 30
        settings.queueing.error_delays = (1, 2, 5, 10, 20)
        # Bounded concurrency, so that memory does not follow the number of objects: at most this
        # many objects are handled at once (the others' events wait in their queues, a few KB each),
        # and an object's worker, with its last event, goes soon after it has nothing to do.
        settings.queueing.worker_limit = WORKER_LIMIT
        settings.queueing.idle_timeout = 1.0

    return registry


async def build_dependencies(settings: Settings, kubeconfig: str | None = None) -> Dependencies:
    kube = Kube(load_configuration(kubeconfig))
    engine = make_engine(settings.database_url)
    return Dependencies(
        settings=settings,
        kube=kube,
        engine=engine,
        factory=session_factory(engine),
        router=RouterClient(settings.gateway_url, settings.gateway_token),
        metrics=OperatorMetrics(),
    )


async def run(
    settings: Settings,
    *,
    namespaces: list[str],
    lease_namespace: str,
    kubeconfig: str | None = None,
    health_port: int | None = None,
    metrics_port: int | None = None,
    lease_seconds: float = 15.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Lead or wait, then run the handlers until the Lease is lost (then wait again) or ``stop``."""
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # Kopf's login reads it too
    deps = await build_dependencies(settings, kubeconfig)
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
            await kopf.operator(
                registry=build_registry(settings, kubeconfig),
                memo=Memo(deps),
                clusterwide=not namespaces,
                namespaces=namespaces,
                standalone=True,
                stop_flag=halt,
            )
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
