"""A LearningPolicy's history limits: read the track's objects, ask controllers.decisions.history what
goes, delete it. Called at the end of every policy reconcile (controllers.reconcile.policies).

Deletion is idempotent: an object already gone (404) counts for nothing, so a pass repeated after a
crash deletes the rest and reports only what it deleted itself. Propagation is the API server's
background default: a run's RayJob and a dedicated model's InferenceService go with their owner,
and the choice never deletes a run that still owns a ShadowModel that stays (see the decisions
module for why not Orphan). One Normal Event per pass that deleted something says how many of each.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx

from controllers.api import kinds
from controllers.api.learningpolicy import LearningPolicy
from controllers.decisions import history
from controllers.decisions.history import Collection, Track
from controllers.reconcile.outcome import Event
from controllers.runtime.kube import Kube, KubeError, Resource

REASON = "HistoryPruned"
log = logging.getLogger("kaizen.history")


async def prune_history(
    kube: Kube, body: dict[str, Any], policy: LearningPolicy, runs: Sequence[dict[str, Any]]
) -> list[Event]:
    """Delete what the policy's ``spec.history`` no longer keeps; ``runs`` are the policy's runs as
    the reconcile listed them (a run made since is unfinished, so never a candidate anyway)."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    deleted = {"TrainingRun": 0, "ShadowModel": 0, "Experiment": 0}
    try:
        track = await read_track(kube, body, policy, runs)
        chosen = history.choose(policy.spec.history, track)
        await delete(kube, namespace, chosen, deleted)
    except (KubeError, httpx.HTTPError, OSError) as error:
        # Housekeeping must not cost the policy its reconcile (a run just started, the counts): the
        # next poll tries again, and what this pass did delete is still reported.
        log.warning("history limits of %s/%s: %s; the next poll tries again", namespace, name, error)
    if not any(deleted.values()):
        return []
    return [("Normal", REASON, history.summary(deleted))]


async def read_track(
    kube: Kube, body: dict[str, Any], policy: LearningPolicy, runs: Sequence[dict[str, Any]]
) -> Track:
    """The policy's runs and models (its label) and every Experiment of the namespace: one of
    another policy, or made by hand, protects the models it names all the same."""
    meta = body["metadata"]
    namespace, name, annotations = meta["namespace"], meta["name"], meta.get("annotations")
    ours = {kinds.POLICY_LABEL: name}
    models = await kube.list(kinds.SHADOW_MODELS, namespace, ours)
    experiments = await kube.list(kinds.EXPERIMENTS, namespace)
    status = policy.status
    return Track(
        runs=[history.run_of(run) for run in runs],
        models=[history.model_of(model) for model in models],
        experiments=[
            history.experiment_of(e, (e["metadata"].get("labels") or {}).get(kinds.POLICY_LABEL) == name)
            for e in experiments
        ],
        champion=status.champion.shadow_model if status and status.champion else None,
        lineage=[entry.shadow_model for entry in status.lineage] if status else [],
        train_now=(annotations or {}).get(kinds.TRAIN_NOW) or "",
    )


async def delete(kube: Kube, namespace: str, chosen: Collection, deleted: dict[str, int]) -> None:
    """Delete in an order that leaves no reference dangling from what stays: the Experiments that
    name models first, then the models, then the runs that trained them. Counts into ``deleted``
    what each kind lost (an object already gone counts for nothing)."""
    order: list[tuple[str, Resource, list[str]]] = [
        ("Experiment", kinds.EXPERIMENTS, chosen.experiments),
        ("ShadowModel", kinds.SHADOW_MODELS, chosen.models),
        ("TrainingRun", kinds.RUNS, chosen.runs),
    ]
    for kind, resource, names in order:
        for name in names:
            if await kube.delete(resource, namespace, name):
                deleted[kind] += 1
