"""What a TrainingRun should do next, from its status and what its job reports. Pure.

A run goes: snapshot the data → submit attempt 1 → follow it → (on a transient failure: wait the
backoff, submit attempt n+1) → read the trainer's manifest → apply the offline gate → create the
ShadowModel. Every step is decided from recorded facts only, so a reconcile interrupted anywhere and
run again reaches the same decision; the I/O in controllers.reconcile.runs carries it out.

A person's Retry (``kaizen retry trainingrun``, ``retry_answer``) grants a run whose job failed for
good one more attempt: the next attempt number, so the next deterministic submission id and RayJob
name. The spec stays frozen; the run goes from finished back to running, and its attempts past
``spec.retry.maxAttempts`` are not retried by themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from controllers.api.common import parse_duration
from controllers.api.training_settings import OfflineGate
from controllers.api.trainingrun import RetrySettings, TrainingMetrics, TrainingRunStatus
from controllers.decisions.conditions import READY, Want
from trainer.config import TrainerManifest


class JobPhase(StrEnum):
    MISSING = "Missing"  # not submitted, or gone
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"


@dataclass(frozen=True)
class JobState:
    phase: JobPhase
    message: str = ""
    logs: str = ""  # where the job's full log is: a command a person can run


# A failed job's message can be Ray's header and the last 20,000 characters of its log. A condition
# says one line of it (``failure_line``); the log stays with the job.
FAILURE_LINE_LIMIT = 300
_RAY_EXIT = re.compile(r"^Job entrypoint command failed with exit code (-?\d+), last available logs")
_ACTOR = re.compile(r"^\(\S+ pid=\d+[^)]*\)\s*")  # Ray's prefix on a worker's log lines
_EXCEPTION = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failure|Fault)(?:\([\w.]*\))?(?::|$)"
)


def failure_line(message: str) -> str:
    """One line for a failed job: the log's last Python exception line (else its last line), with the
    exit code when Ray's header gives one, cut to ``FAILURE_LINE_LIMIT`` characters."""
    lines = [_ACTOR.sub("", line.strip()) for line in message.splitlines() if line.strip()]
    if not lines:
        return ""
    exit_code = _RAY_EXIT.match(lines[0]) if len(lines) > 1 else None
    body = lines[1:] if exit_code else lines
    line = next((line for line in reversed(body) if _EXCEPTION.match(line)), body[-1])
    if exit_code:
        line = f"{line} (exit code {exit_code.group(1)})"
    return line if len(line) <= FAILURE_LINE_LIMIT else line[: FAILURE_LINE_LIMIT - 1] + "…"


# Ray's job statuses (what the Ray Jobs API reports, and a RayJob's status.jobStatus) as phases.
RAY_PHASES = {
    "PENDING": JobPhase.PENDING,
    "RUNNING": JobPhase.RUNNING,
    "SUCCEEDED": JobPhase.SUCCEEDED,
    "FAILED": JobPhase.FAILED,
    "STOPPED": JobPhase.STOPPED,
}


def rayjob_state(rayjob: Mapping[str, Any]) -> JobState:
    """KubeRay's status as a phase: jobStatus says what Ray reports, jobDeploymentStatus what KubeRay
    did (a Failed deployment, e.g. a cluster that never came up, fails the attempt too)."""
    status = rayjob.get("status") or {}
    message = str(status.get("message") or "")
    if status.get("jobDeploymentStatus") == "Failed":
        return JobState(JobPhase.FAILED, message or str(status.get("reason") or "RayJob deployment failed"))
    job_status = status.get("jobStatus")
    if not job_status:
        return JobState(JobPhase.PENDING, message)
    return JobState(RAY_PHASES[job_status], message)


class Step(StrEnum):
    SNAPSHOT = "Snapshot"
    SUBMIT = "Submit"
    WAIT_RETRY = "WaitRetry"
    FOLLOW = "Follow"
    READ_OUTPUT = "ReadOutput"
    CREATE_SHADOW = "CreateShadowModel"
    DONE = "Done"


SUCCEEDED = "Succeeded"
GATE = "GatePassed"
EMPTY = "the snapshot holds no trainable rows for this track"
POLICY_NOT_FOUND = "PolicyNotFound"
# How long a run waits for the LearningPolicy its policyRef names: long enough for a GitOps sync that
# applies the run before its policy, short enough that a typo does not leave a run pending for ever.
POLICY_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Next:
    step: Step
    attempt: int = 0
    wait: timedelta | None = None
    conditions: tuple[Want, ...] = ()
    finished: bool = False


def backoff(retry: RetrySettings, attempt: int) -> timedelta:
    """Wait before ``attempt`` (>= 2): the configured backoff, doubling each time, at most an hour."""
    wait: timedelta = parse_duration(retry.backoff) * (2 ** (attempt - 2))
    return min(wait, timedelta(hours=1))


def next_step(status: TrainingRunStatus, job: JobState | None, retry: RetrySettings, now: datetime) -> Next:
    """The next step for a run whose spec is valid."""
    if status.completion_time is not None:
        if status.adapter is not None and _gate_passed(status) and not status.shadow_model:
            return Next(Step.CREATE_SHADOW)
        return Next(Step.DONE, finished=True)
    if status.dataset is None:
        return Next(Step.SNAPSHOT, conditions=(_progress("Snapshotting", "exporting the dataset snapshot"),))
    if status.attempts == 0:
        return Next(Step.SUBMIT, attempt=1, conditions=(_progress("Submitting", "submitting attempt 1"),))
    phase = job.phase if job else JobPhase.MISSING
    attempt = status.attempts
    limit = max(retry.max_attempts, attempt)  # a person's retry may have granted one more
    if phase == JobPhase.SUCCEEDED:
        return Next(Step.READ_OUTPUT, attempt=attempt)
    if phase in (JobPhase.PENDING, JobPhase.RUNNING):
        message = f"attempt {attempt} of {limit} is {phase.value.lower()}"
        return Next(Step.FOLLOW, attempt=attempt, conditions=(_progress("Training", message),))
    if phase == JobPhase.MISSING and status.next_retry_time is None:
        # Recorded as submitted but not found: the submission was lost (e.g. the operator died
        # between recording and submitting). Submitting the same deterministic id again is safe.
        return Next(
            Step.SUBMIT,
            attempt=attempt,
            conditions=(_progress("Submitting", f"submitting attempt {attempt}"),),
        )
    # Failed, stopped, or waiting for the retry already scheduled.
    said = failure_line(job.message) if job else ""
    if attempt >= limit:
        reason = said or f"the job ended {phase.value.lower()}"
        failed = f"attempt {attempt} of {limit} failed: {reason}"
        if job and job.logs:
            failed += f". Full log: {job.logs}"
        return Next(
            Step.DONE,
            finished=True,
            conditions=(Want.false(READY, "JobFailed", failed), Want.false(SUCCEEDED, "JobFailed", reason)),
        )
    due = status.next_retry_time or now + backoff(retry, attempt + 1)
    if now < due:
        message = f"attempt {attempt} failed ({said or phase.value}); retrying at {due:%H:%M:%S}"
        return Next(
            Step.WAIT_RETRY, attempt=attempt + 1, wait=due - now, conditions=(_progress("Retrying", message),)
        )
    return Next(
        Step.SUBMIT,
        attempt=attempt + 1,
        conditions=(_progress("Submitting", f"submitting attempt {attempt + 1}"),),
    )


@dataclass(frozen=True)
class PolicyWait:
    """A run whose policy does not exist: what its conditions say, and whether it has given up."""

    conditions: tuple[Want, ...]
    gave_up: bool


def missing_policy(namespace: str, policy_ref: str, created: datetime, now: datetime) -> PolicyWait:
    """Ready False naming the field while the run waits ``POLICY_GRACE`` from its creation for the
    policy to appear; then it ends (Succeeded False too), having read nothing."""
    due = created + POLICY_GRACE
    missing = f"spec.policyRef: no LearningPolicy {policy_ref!r} in namespace {namespace!r}; nothing was read"
    if now < due:
        waiting = f"{missing}. Create it; without it this run ends at {due:%Y-%m-%dT%H:%M:%SZ}"
        return PolicyWait((Want.false(READY, POLICY_NOT_FOUND, waiting),), gave_up=False)
    ended = f"{missing}, still so {POLICY_GRACE.seconds // 60} minutes after the run was created: it ended"
    return PolicyWait(
        (
            Want.false(READY, POLICY_NOT_FOUND, f"{ended}. Create the policy, then a new run"),
            Want.false(SUCCEEDED, POLICY_NOT_FOUND, ended),
        ),
        gave_up=True,
    )


def logs_command(namespace: str, name: str) -> str:
    """What a person runs to read a run's trainer log (the latest attempt's; ``--attempt N`` for others)."""
    return f"kaizen logs trainingrun {name} -n {namespace}"


def retry_answer(status: TrainingRunStatus, newer: str = "") -> tuple[int, str]:
    """A Retry request's answer: (the attempt to submit, "") when granted, else (0, why declined).

    Granted only to a run whose job failed for good: another attempt of the same frozen spec on the
    same snapshot can fix a lost node, a full disk or a bug fixed in the image, nothing else. Declined
    for a run still going (its failed attempts are retried by themselves), one that trained (an adapter
    that missed the gate would be trained again from the same data and settings), one whose snapshot was
    empty (nothing to train on; a new run takes a new snapshot), and one of a policy that has started a
    ``newer`` run since (two runs of one track at once, the retried one on older data)."""
    policy_hint = "start a new run (kaizen train learningpolicy POLICY)"
    if status.completion_time is None:
        ready = next((c for c in status.conditions if c.type == READY), None)
        now = f" ({ready.message})" if ready is not None and ready.message else ""
        return 0, (
            f"the run has not finished{now}; a failed attempt is retried by itself up to"
            " spec.retry.maxAttempts"
        )
    if status.adapter is not None or any(
        c.type == SUCCEEDED and c.status == "True" for c in status.conditions
    ):
        if _gate_passed(status):
            return 0, f"the run succeeded (ShadowModel {status.shadow_model or 'pending'}); nothing to retry"
        return 0, (
            "the run trained but its adapter missed the offline gate; the same data and settings would"
            f" train the same adapter: change the policy's gate or data and {policy_hint}"
        )
    if status.dataset is None:
        return 0, "the run never found its policy (spec.policyRef): create the policy, then a new run"
    if status.attempts == 0:
        return 0, f"{EMPTY}: nothing to retry; once the track has data, {policy_hint}"
    if newer:
        return 0, f"TrainingRun {newer} of the same policy started since; a retry would train beside it"
    return status.attempts + 1, ""


def gate_verdict(gate: OfflineGate, metrics: TrainingMetrics) -> tuple[bool, str]:
    """Whether the adapter may face traffic, and a sentence with the numbers."""
    accuracy, margin = metrics.preference_accuracy, metrics.reward_margin
    failures = []
    if accuracy is None or accuracy < gate.min_preference_accuracy:
        failures.append(f"preference accuracy {_fmt(accuracy)} < {gate.min_preference_accuracy}")
    if margin is not None and margin < gate.min_reward_margin:
        failures.append(f"reward margin {_fmt(margin)} < {gate.min_reward_margin}")
    if failures:
        return False, "offline gate not met: " + "; ".join(failures)
    return True, f"offline gate met: preference accuracy {_fmt(accuracy)}, reward margin {_fmt(margin)}"


def training_metrics(manifest: TrainerManifest) -> TrainingMetrics:
    """The run's metrics from the trainer's manifest."""
    metrics = manifest.metrics
    return TrainingMetrics(
        train_loss=metrics.train_loss,
        eval_loss=metrics.eval_loss,
        preference_accuracy=metrics.preference_accuracy,
        reward_margin=metrics.reward_margin,
        steps=metrics.steps,
        gpu_hours=gpu_hours(manifest),
    )


def gpu_hours(manifest: TrainerManifest) -> float:
    """GPU-hours the job held: wall time of the whole job times the GPUs of all workers."""
    gpus = manifest.scaling.workers * manifest.scaling.gpus_per_worker
    return round(manifest.timings.total_seconds * gpus / 3600.0, 4)


def trained_condition(status: TrainingRunStatus) -> Want | None:
    """Ready for a run that trained: Succeeded when its adapter passed the offline gate, else GateNotMet
    (None for a run that has not trained)."""
    if status.completion_time is None or status.adapter is None:
        return None
    if _gate_passed(status):
        return Want.true(READY, "Succeeded", f"trained; ShadowModel {status.shadow_model}")
    return Want.true(READY, "GateNotMet", "trained, but the adapter did not pass the offline gate")


def _gate_passed(status: TrainingRunStatus) -> bool:
    return any(c.type == GATE and c.status == "True" for c in status.conditions)


def _progress(reason: str, message: str) -> Want:
    # Unknown, not False: work under way is not a fault (Argo CD shows False as Degraded).
    return Want.unknown(READY, reason, message)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
