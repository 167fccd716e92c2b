"""TrainingRun reconcile: the I/O around controllers.decisions.runplan.

Snapshot the dataset (content-addressed, so a repeat writes the same files), submit the attempt with
its deterministic id (controllers.reconcile.jobs), follow it, read the trainer's manifest, apply the
offline gate and create the ShadowModel. Returns the new status; the handler writes it.

A person's Retry (``answer``) is acted on first, so the pass that grants it already follows the new
attempt.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from controllers.api import kinds
from controllers.api.common import created_at, parse_duration
from controllers.api.intervention import Action, pending, recorded
from controllers.api.learningpolicy import PairSources
from controllers.api.serving_settings import ServingSettings
from controllers.api.trainingrun import AdapterStatus, DatasetStatus, TrainingRun, TrainingRunStatus
from controllers.builders.children import Parent, shadow_model
from controllers.builders.storage import StorageSettingsError
from controllers.clients.objectstore import StorageError, publish_folder, read_text
from controllers.decisions.answers import declined, event, not_applicable
from controllers.decisions.conditions import READY, Want, holds, merge
from controllers.decisions.runplan import (
    EMPTY,
    GATE,
    SUCCEEDED,
    Next,
    Step,
    gate_verdict,
    missing_policy,
    next_step,
    retry_answer,
    trained_condition,
    training_metrics,
)
from controllers.reconcile import storage
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.jobs import config_for, observe_job, submit
from controllers.reconcile.mining import trainable_sources
from controllers.reconcile.outcome import Outcome
from controllers.store.snapshot import SnapshotFilter, export_dpo, export_sft
from trainer.config import Method, TrainerManifest, join_uri


async def reconcile(body: dict[str, Any], run: TrainingRun, deps: Dependencies) -> Outcome[TrainingRunStatus]:
    now = deps.clock()
    out = Outcome.start(run.status, TrainingRunStatus(), body["metadata"])
    try:
        await advance(body, run, out, deps, now)
    except (StorageSettingsError, StorageError) as error:
        # Nothing of the failed step was recorded; the next reconcile tries it again. An endpoint that
        # does not answer leaves the run waiting (Ready Unknown), never failed.
        stopped = storage.want_for(error, run.spec.training.storage)
        if not holds(out.status.conditions, stopped):  # one Event, not one per reconcile
            out.events.append(("Warning", stopped.reason, stopped.message))
        out.status.conditions = merge(
            out.status.conditions, [stopped], generation=out.status.observed_generation, now=now
        )
    return out


async def advance(
    body: dict[str, Any], run: TrainingRun, out: Outcome[TrainingRunStatus], deps: Dependencies, now: datetime
) -> None:
    """One pass of the run's steps; a storage failure raises before its step records anything."""
    meta = body["metadata"]
    await answer(body, run, out, deps, now)
    job = await observe_job(run, meta, out.status, deps) if out.status.attempts else None
    step = next_step(out.status, job, run.spec.retry, now)
    if step.step == Step.SNAPSHOT:
        if (stopped := await snapshot(run, meta, out, deps, now)) is not None:
            _set(out, step, now, stopped)
            return
        step = next_step(out.status, None, run.spec.retry, now)
    if step.step == Step.SUBMIT:
        await submit(body, run, out, step.attempt, deps, now)
    elif step.step == Step.WAIT_RETRY and out.status.next_retry_time is None:
        out.status.next_retry_time = now + (step.wait or timedelta(0))
        out.events.append(("Warning", "AttemptFailed", _first_message(step, "attempt failed")))
    elif step.step == Step.READ_OUTPUT:
        await read_output(run, meta, out, deps)
        step = next_step(out.status, job, run.spec.retry, now)
    if step.step == Step.DONE and step.finished and out.status.completion_time is None:
        out.status.completion_time = now
        deps.metrics.training_runs.labels("Failed").inc()
        out.events.append(("Warning", "Failed", _first_message(step, "failed")))
    if step.step == Step.CREATE_SHADOW:
        await create_shadow_model(body, run, out.status, deps)
        out.events.append(("Normal", "ShadowModelCreated", out.status.shadow_model))
    _set(out, step, now)


async def answer(
    body: dict[str, Any], run: TrainingRun, out: Outcome[TrainingRunStatus], deps: Dependencies, now: datetime
) -> None:
    """Answer a person's pending request. A granted Retry submits the next attempt before the request
    is recorded (both reach the API server in this pass's status write): an operator killed in between
    finds the request still pending, grants the same attempt number again, and the deterministic id
    finds the job the first pass made. Never two jobs, never a lost record."""
    request = pending(body["metadata"], out.status.interventions)
    if request is None:
        return
    if request.action != Action.RETRY:
        outcome = not_applicable(request, "TrainingRun")
    else:
        newer = await _newer_run(body, run, deps) if out.status.completion_time else ""
        attempt, why = retry_answer(out.status, newer)
        if attempt:
            await submit(body, run, out, attempt, deps, now)
            out.status.completion_time = None  # running again: its policy starts nothing meanwhile
            out.status.conditions = [c for c in out.status.conditions if c.type != SUCCEEDED]
            outcome = f"attempt {attempt} submitted ({out.status.submission_id})"
        else:
            outcome = declined(why)
    out.status.interventions = recorded(out.status.interventions, request, outcome)
    out.events.append(event(request, outcome))


async def _newer_run(body: dict[str, Any], run: TrainingRun, deps: Dependencies) -> str:
    """A run of the same policy created after this one (the newest), or ""."""
    if not run.spec.policy_ref:
        return ""
    meta = body["metadata"]
    siblings = await deps.kube.list(kinds.RUNS, meta["namespace"], {kinds.POLICY_LABEL: run.spec.policy_ref})
    mine = (meta.get("creationTimestamp") or "", meta["name"])
    later = [(r["metadata"].get("creationTimestamp") or "", r["metadata"]["name"]) for r in siblings]
    return max((key for key in later if key > mine), default=("", ""))[1]


def _first_message(step: Next, default: str) -> str:
    return step.conditions[0].message if step.conditions else default


def _set(out: Outcome[TrainingRunStatus], step: Next, now: datetime, *extra: Want) -> None:
    """Conditions for the step reached; a run that trained says Succeeded or GateNotMet."""
    wants = [*step.conditions, *extra]
    if not wants and (trained := trained_condition(out.status)) is not None:
        wants = [trained]
    out.status.conditions = merge(
        out.status.conditions, wants, generation=out.status.observed_generation, now=now
    )


async def snapshot(
    run: TrainingRun, meta: dict[str, Any], out: Outcome[TrainingRunStatus], deps: Dependencies, now: datetime
) -> Want | None:
    """Export the run's dataset; the Ready condition that stops the run when it cannot train: its
    policy does not exist (nothing is read; the next reconcile looks again), or the snapshot holds
    nothing to train on (the run is then over)."""
    namespace, name = meta["namespace"], meta["name"]
    policy_ref = run.spec.policy_ref
    policy = await deps.kube.get(kinds.POLICIES, namespace, policy_ref) if policy_ref else None
    if policy_ref and policy is None:
        return _wait_for_policy(meta, policy_ref, out, deps, now)
    flt = snapshot_filter(run, policy, now, namespace)
    training = run.spec.training
    options, _ = await storage.resolve(training.storage, training.output_uri, namespace, deps.kube)
    dataset = await asyncio.to_thread(export_snapshot, run, namespace, name, deps, flt, options)
    out.status.dataset = dataset
    if dataset.train_rows == 0:
        out.status.completion_time = now
        out.events.append(("Warning", "NoTrainingData", "snapshot is empty; nothing to train"))
        return Want.false(READY, "NoTrainingData", EMPTY)
    rows = f"{dataset.train_rows} train / {dataset.eval_rows} eval rows"
    out.events.append(("Normal", "Snapshotted", f"{rows}, {dataset.content_hash[:19]}"))
    return None


def _wait_for_policy(
    meta: dict[str, Any], policy_ref: str, out: Outcome[TrainingRunStatus], deps: Dependencies, now: datetime
) -> Want:
    """A run whose policy does not exist reads nothing; it waits, then ends (one Event each)."""
    created = created_at(meta, now)
    wait = missing_policy(meta["namespace"], policy_ref, created, now)
    stopped, *rest = wait.conditions
    if wait.gave_up:
        out.status.completion_time = now
        deps.metrics.training_runs.labels("Failed").inc()
        out.status.conditions = merge(
            out.status.conditions, rest, generation=out.status.observed_generation, now=now
        )
    if not holds(out.status.conditions, stopped):  # one Event per state, not one per reconcile
        out.events.append(("Warning", stopped.reason, stopped.message))
    return stopped


def snapshot_filter(
    run: TrainingRun, policy: dict[str, Any] | None, now: datetime, namespace: str
) -> SnapshotFilter:
    """The policy's track and pair sources in the run's namespace, the run's frozen data settings (a
    run without a policy: everything trainable of its namespace)."""
    spec = (policy or {}).get("spec", {})
    track = spec.get("track", {})
    sources = spec.get("pairSources")
    # The same sources the policy counts as trainable (a hand-made run without a policy takes all).
    enabled = None if sources is None else trainable_sources(PairSources.model_validate(sources))
    data = run.spec.data
    return SnapshotFilter(
        namespace=namespace,
        agent=track.get("agent"),
        role=track.get("role"),
        task_family=track.get("taskFamily"),
        require_review=data.require_review,
        sources=enabled,
        min_reward=data.min_reward,
        since=now - parse_duration(data.max_age) if data.max_age else None,
    )


def dataset_uri(output_uri: str, run_name: str) -> str:
    """Where a run's snapshot lives: beside its checkpoints and adapter (trainer.config's layout)."""
    return join_uri(output_uri, run_name, "dataset")


def export_snapshot(
    run: TrainingRun,
    namespace: str,
    name: str,
    deps: Dependencies,
    flt: SnapshotFilter,
    options: dict[str, Any],
) -> DatasetStatus:
    """Export the track's trainable data into local scratch space, then publish it under the run's
    ``dataset/`` folder (snapshot.json last). Blocking. The object names are fixed and the content is
    hashed, so exporting the same data again writes the same objects."""
    uri = dataset_uri(run.spec.training.output_uri, name)
    scratch = deps.settings.data_root / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    export = export_dpo if run.spec.training.method.value == Method.DPO.value else export_sft
    with tempfile.TemporaryDirectory(prefix=f"{namespace}.{name}.", dir=scratch) as folder:
        snap = export(deps.engine, Path(folder), flt, scrub_pii=run.spec.data.scrub_pii, uri=uri)
        publish_folder(Path(folder), uri, options)
    assert snap.watermark is not None or snap.train_rows == 0
    return DatasetStatus(
        uri=uri,
        content_hash=snap.content_hash,
        watermark=snap.watermark or deps.clock(),
        train_rows=snap.train_rows,
        eval_rows=snap.eval_rows,
        scrubbed_values=sum(snap.scrubbed.values()),
    )


async def read_output(
    run: TrainingRun, meta: dict[str, Any], out: Outcome[TrainingRunStatus], deps: Dependencies
) -> None:
    """Read the trainer's manifest: the run's metrics, its adapter, and the offline gate's verdict."""
    namespace, name = meta["namespace"], meta["name"]
    config = config_for(run, name, out.status)
    training = run.spec.training
    options, _ = await storage.resolve(training.storage, config.manifest_uri, namespace, deps.kube)
    manifest = await asyncio.to_thread(load_manifest, config.manifest_uri, options)
    out.status.metrics = training_metrics(manifest)
    out.status.adapter = AdapterStatus(uri=config.adapter_uri, digest=manifest.adapter.digest)
    out.status.completion_time = deps.clock()
    passed, message = gate_verdict(run.spec.gate, out.status.metrics)
    gate = Want.true(GATE, "GateMet", message) if passed else Want.false(GATE, "GateNotMet", message)
    trained = f"{manifest.metrics.steps} steps, adapter {manifest.adapter.digest[:19]}"
    out.status.conditions = merge(
        out.status.conditions,
        [gate, Want.true(SUCCEEDED, "Trained", trained)],
        generation=out.status.observed_generation,
        now=deps.clock(),
    )
    deps.metrics.training_runs.labels("Succeeded" if passed else "GateNotMet").inc()
    out.events.append(("Normal" if passed else "Warning", "GateMet" if passed else "GateNotMet", message))


def load_manifest(uri: str, options: dict[str, Any]) -> TrainerManifest:
    """The trainer's manifest, read with the run's storage options. Blocking."""
    return TrainerManifest.model_validate(json.loads(read_text(uri, options)))


async def create_shadow_model(
    body: dict[str, Any], run: TrainingRun, status: TrainingRunStatus, deps: Dependencies
) -> None:
    """The ShadowModel that serves the run's adapter, served as the run's policy says."""
    assert status.adapter is not None
    policy_ref = run.spec.policy_ref
    policy = (
        await deps.kube.get(kinds.POLICIES, body["metadata"]["namespace"], policy_ref) if policy_ref else None
    )
    serving = ServingSettings.model_validate((policy or {}).get("spec", {}).get("serving", {}))
    owner = Parent.of(policy) if policy is not None else None
    shadow = shadow_model(Parent.of(body), run.spec, status.adapter, owner, serving)
    await deps.kube.ensure(kinds.SHADOW_MODELS, shadow.to_wire())
    status.shadow_model = shadow.name
