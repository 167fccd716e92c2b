"""The Spec and Status sections of ``kaizen describe``, one function per kind: pure.

Each picks what a person on call reads first, from the stored object as the API server returns it
(plain dicts, so a half-written status still describes): an Experiment's decision, weights and
variants; a TrainingRun's phase, attempts and metrics; a ShadowModel's role and endpoint; a
LearningPolicy's champion, data and lineage. ``kubectl get -o yaml`` has everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from controllers.api.kindinfo import READY, condition
from controllers.cli.columns import age
from controllers.cli.describing import NONE, Field, Table, dig, fields_of, number, status_section, text, when

Sections = Callable[[dict[str, Any], datetime], list[Field]]


def _rollout(spec: dict[str, Any]) -> list[Field]:
    rollout = spec.get("rollout") or {}
    steps = ", ".join(f"{step}%" for step in rollout.get("steps") or [])
    return [
        ("Steps", steps),
        ("Unit", text(rollout.get("unit"))),
        ("Criterion", text(rollout.get("criterion"))),
        ("Min samples", number(rollout.get("minSamplesPerVariant"), " per variant")),
        ("Alpha", number(rollout.get("alpha"))),
        ("Max duration", text(rollout.get("maxDuration"))),
        ("Auto promote", text(rollout.get("autoPromote"))),
    ]


def experiment(obj: dict[str, Any], now: datetime) -> list[Field]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    variants = [
        [
            text(v.get("name")),
            text(v.get("role") or "Challenger"),
            f"ShadowModel {v['shadowModel']}" if v.get("shadowModel") else text(v.get("endpoint")),
        ]
        for v in spec.get("variants") or []
    ]
    sample_ratio = status.get("sampleRatio") or {}
    ratio = (
        "" if not sample_ratio else ("ok" if sample_ratio.get("ok", True) else "MISMATCH: decisions blocked")
    )
    if ratio and sample_ratio.get("pValue") is not None:
        ratio += f" (p={number(sample_ratio['pValue'])})"
    share = status.get("challengerWeight")
    settled: list[Field] = [
        ("Decision", text(status.get("decision"))),
        ("Why", text(status.get("decisionReason"))),
        ("Decided", when(status.get("decidedAt"), now)),
        ("Traffic since", when(status.get("startedAt"), now)),
        ("Challenger share", "" if share is None else f"{share}% of traffic"),
        ("Sample ratio", ratio),
        (
            "Variants",
            Table(
                ["Name", "Weight", "Samples", "Mean", "Diff CI", "P-Value", "Errors", "P95 ms"],
                [_variant_row(row) for row in status.get("variants") or []],
            ),
        ),
    ]
    return [
        (
            "Spec",
            [
                ("Policy", text(spec.get("policyRef"))),
                ("Strategy", text(spec.get("strategy"))),
                ("Paused", text(spec.get("paused", False))),
                ("Variants", Table(["Name", "Role", "Serves"], variants)),
                ("Rollout", _rollout(spec)),
            ],
        ),
        status_section(obj, settled),
    ]


def _variant_row(row: dict[str, Any]) -> list[str]:
    low, high = row.get("confidenceLower"), row.get("confidenceUpper")
    interval = f"[{number(low)}, {number(high)}]" if low is not None and high is not None else ""
    return [
        text(row.get("name")),
        number(row.get("weight"), "%"),
        number(row.get("samples")),
        number(row.get("meanReward")),
        interval,
        number(row.get("pValue")),
        number(row.get("errorRate")),
        number(row.get("latencyP95Ms")),
    ]


def training_run(obj: dict[str, Any], now: datetime) -> list[Field]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    training = spec.get("training") or {}
    attempts = status.get("attempts")
    most = dig(spec, "retry.maxAttempts")
    settled: list[Field] = [
        ("Phase", run_phase(obj)),
        ("Attempts", "" if attempts is None else f"{attempts} of {most}" if most else str(attempts)),
        ("Job", text(status.get("jobName") or status.get("submissionId"))),
        ("Next retry", when(status.get("nextRetryTime"), now)),
        ("Started", when(status.get("startTime"), now)),
        ("Completed", when(status.get("completionTime"), now)),
        (
            "Dataset",
            fields_of(status.get("dataset"), "trainRows evalRows scrubbedValues contentHash uri"),
        ),
        (
            "Metrics",
            fields_of(
                status.get("metrics"), "preferenceAccuracy rewardMargin trainLoss evalLoss steps gpuHours"
            ),
        ),
        ("Adapter", fields_of(status.get("adapter"), "uri digest")),
        ("Shadow model", text(status.get("shadowModel"))),
    ]
    return [
        (
            "Spec",
            [
                ("Policy", text(spec.get("policyRef"))),
                ("Trigger", text(spec.get("trigger"))),
                ("Method", text(training.get("method"))),
                ("Base model", text(dig(training, "baseModel.name"))),
                ("Output", text(training.get("outputUri"))),
                ("Retries", f"{most} attempts at most, backoff {dig(spec, 'retry.backoff')}" if most else ""),
                (
                    "Gate",
                    fields_of(spec.get("gate"), "minPreferenceAccuracy minRewardMargin"),
                ),
            ],
        ),
        status_section(obj, settled),
    ]


def run_phase(obj: dict[str, Any]) -> str:
    """Succeeded or Failed once the run has finished, else what it is doing (the Ready reason)."""
    succeeded = condition(obj, "Succeeded").get("status")
    if succeeded == "True":
        return "Succeeded"
    if succeeded == "False":
        return "Failed"
    return str(condition(obj, READY).get("reason") or "Pending")


def shadow_model(obj: dict[str, Any], now: datetime) -> list[Field]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    evidence = status.get("rollbackEvidence")
    settled: list[Field] = [
        ("Role", text(status.get("role"))),
        ("Why", text(status.get("roleReason"))),
        ("Role changed", when(status.get("roleChangedAt"), now)),
        ("Endpoint", text(status.get("endpoint")) or NONE),
        ("Served model name", text(status.get("servedModelName"))),
        ("Inference service", text(status.get("inferenceService"))),
        (
            "Evaluation",
            fields_of(status.get("evaluation"), "preferenceAccuracy rewardMargin evalLoss"),
        ),
    ]
    if evidence:
        settled.append(
            (
                "Rollback evidence",
                fields_of(evidence, "experiment samples meanDelta pValue guardrail reason"),
            )
        )
    serving = spec.get("serving") or {}
    return [
        (
            "Spec",
            [
                ("Policy", text(spec.get("policyRef"))),
                ("Training run", text(spec.get("trainingRunRef"))),
                ("Base model", text(dig(spec, "baseModel.name"))),
                ("Adapter", text(dig(spec, "adapter.uri"))),
                ("Digest", text(dig(spec, "adapter.digest"))),
                (
                    "Serving",
                    " ".join(text(serving.get(key)) for key in ("runtime", "mode") if serving.get(key)),
                ),
            ],
        ),
        status_section(obj, settled),
    ]


def learning_policy(obj: dict[str, Any], now: datetime) -> list[Field]:
    spec = obj.get("spec") or {}
    track = ", ".join(f"{key}={value}" for key, value in sorted((spec.get("track") or {}).items()))
    return [
        (
            "Spec",
            [
                ("Track", track),
                ("Method", text(dig(spec, "training.method"))),
                ("Base model", text(dig(spec, "training.baseModel.name"))),
                ("Trigger", _trigger(spec.get("trigger") or {})),
                ("Paused", text(spec.get("paused", False))),
                ("Rollout", _rollout(spec)),
            ],
        ),
        status_section(obj, _policy_status(obj, now)),
    ]


def _policy_status(obj: dict[str, Any], now: datetime) -> list[Field]:
    status = obj.get("status") or {}
    budget, used = dig(obj, "spec.trigger.budget") or {}, status.get("budget") or {}
    champion = status.get("champion") or {}
    data = status.get("data") or {}
    by_source = ", ".join(
        f"{key} {value}" for key, value in sorted((data.get("pairsBySource") or {}).items())
    )
    last_run = [text(status.get("lastTrainingRun")), when(status.get("lastTrainingTime"), now)]
    spent = f"{number(used.get('gpuHoursUsed', 0.0))} of {number(budget.get('gpuHours'))}"
    return [
        (
            "Champion",
            f"{champion['shadowModel']} since {when(champion.get('since'), now)}" if champion else "",
        ),
        ("Last run", " ".join(part for part in last_run if part)),
        ("Next eligible", when(status.get("nextEligibleTime"), now)),
        ("GPU hours used", f"{spent} in {text(budget.get('window'))}" if used else ""),
        (
            "Data",
            [*fields_of(data, "runs approvedPairs newApprovedPairs pendingReview"), ("By source", by_source)],
        ),
        ("Lineage", _lineage(status, now)),
    ]


def _lineage(status: dict[str, Any], now: datetime) -> Table:
    rows = [
        [
            text(entry.get("shadowModel")),
            text(entry.get("trainingRun")),
            age(entry.get("promotedAt"), now),
            age(entry.get("retiredAt"), now) if entry.get("retiredAt") else "",
            text(entry.get("reason")),
        ]
        for entry in status.get("lineage") or []
    ]
    return Table(["Shadow Model", "Training Run", "Promoted", "Retired", "Reason"], rows)


def _trigger(trigger: dict[str, Any]) -> str:
    parts = [f"{number(trigger.get('minNewPairs'))} new pairs" if trigger.get("minNewPairs") else ""]
    parts.append(f"schedule {trigger['schedule']} (UTC)" if trigger.get("schedule") else "")
    parts.append(f"cooldown {trigger['cooldown']}" if trigger.get("cooldown") else "")
    return ", ".join(part for part in parts if part)


SECTIONS: dict[str, Sections] = {
    "Experiment": experiment,
    "TrainingRun": training_run,
    "ShadowModel": shadow_model,
    "LearningPolicy": learning_policy,
}
