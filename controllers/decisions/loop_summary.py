"""What the loop dashboard shows of a Kubernetes object, cut from its status as the operator writes it.

The gateway serves the dashboard and does not read Kubernetes: its identity may call the routes and
the store, not list TrainingRuns in every tenant's namespace. So the operator, which already writes
each object's status, also leaves a short summary of it in the store (``store.loop_objects``) for
the dashboard to read: a TrainingRun's state and metrics, an Experiment's own decision and its
drift watch, a LearningPolicy's champion and lineage. This module decides what goes in a summary,
from the object's wire form (camelCase), and nothing else: no prompt, output or secret is in any
status, and no free text longer than a condition message is copied.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from controllers.api import experiment, learningpolicy, trainingrun
from controllers.api.kindinfo import READY

SUCCEEDED = "Succeeded"
MESSAGE_CHARS = 512  # a condition message may hold up to 32 KiB; the page shows a sentence


@dataclass(frozen=True)
class Summary:
    kind: str
    namespace: str
    name: str
    uid: str
    policy: str  # the LearningPolicy (route) whose dashboard shows it
    body: dict[str, Any]

    @property
    def digest(self) -> str:
        """Changes exactly when what the dashboard would show changes (the operator writes only then)."""
        text = json.dumps([self.policy, self.body], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)
    if found is None:
        return {}
    return {
        "status": found.get("status"),
        "reason": found.get("reason"),
        "message": str(found.get("message") or "")[:MESSAGE_CHARS],
        "since": found.get("lastTransitionTime"),
    }


def _run_state(status: dict[str, Any]) -> str:
    """Succeeded, Failed, Running or Pending: the one word a person scanning the runs wants."""
    done = _condition(status, SUCCEEDED).get("status")
    if done == "True":
        return "Succeeded"
    if done == "False" and status.get("completionTime"):
        return "Failed"
    return "Running" if status.get("attempts") else "Pending"


def _training_run(spec: dict[str, Any], status: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    policy = spec.get("policyRef")
    if not policy:
        return None  # a run made by hand belongs to no policy's dashboard
    dataset = status.get("dataset") or {}
    body = {
        "state": _run_state(status),
        "ready": _condition(status, READY),
        "trigger": spec.get("trigger"),
        "method": (spec.get("training") or {}).get("method"),
        "attempts": status.get("attempts", 0),
        "startTime": status.get("startTime"),
        "completionTime": status.get("completionTime"),
        "trainRows": dataset.get("trainRows"),
        "evalRows": dataset.get("evalRows"),
        "metrics": dict(status.get("metrics") or {}),
        "shadowModel": status.get("shadowModel") or None,
    }
    return str(policy), body


VARIANT_FIELDS = ("name", "weight", "samples", "meanReward", "confidenceLower", "confidenceUpper", "pValue")


def _experiment(name: str, spec: dict[str, Any], status: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    drift = _condition(status, experiment.DRIFT)
    rollout = spec.get("rollout") or {}
    champions = [
        v.get("name")
        for v in spec.get("variants") or []
        if v.get("role") == experiment.VariantRole.CHAMPION.value
    ]
    body = {
        # What ``kaizen experiment report`` reads from the object: the spec's test and the status rows.
        "champion": champions[0] if champions else None,
        "alpha": rollout.get("alpha"),
        "minDetectableEffect": rollout.get("minDetectableEffect"),
        "variants": [{key: row.get(key) for key in VARIANT_FIELDS} for row in status.get("variants") or []],
        "decision": status.get("decision") or experiment.Decision.CONTINUE.value,
        "reason": str(status.get("decisionReason") or "")[:MESSAGE_CHARS],
        "decidedAt": status.get("decidedAt"),
        "startedAt": status.get("startedAt"),
        "challengerWeight": status.get("challengerWeight"),
        "drift": {"stage": drift["reason"], "message": drift["message"], "since": drift["since"]}
        if drift
        else None,
        "sampleRatioOk": (status.get("sampleRatio") or {}).get("ok", True),
    }
    return str(spec.get("policyRef") or name), body  # a hand-made experiment routes under its own name


def _policy(name: str, status: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    champion = status.get("champion") or {}
    body = {
        "champion": champion.get("shadowModel"),
        "championSince": champion.get("since"),
        "lastTrainingRun": status.get("lastTrainingRun") or None,
        "nextEligibleTime": status.get("nextEligibleTime"),
        "ready": _condition(status, READY),
        "lineage": [
            {
                "shadowModel": entry.get("shadowModel"),
                "trainingRun": entry.get("trainingRun") or None,
                "promotedAt": entry.get("promotedAt"),
                "retiredAt": entry.get("retiredAt"),
                "reason": str(entry.get("reason") or "")[:MESSAGE_CHARS],
            }
            for entry in status.get("lineage") or []
        ],
    }
    return name, body


def summarize(kind: str, raw: dict[str, Any], status: dict[str, Any]) -> Summary | None:
    """The summary of ``raw`` (an object's wire form) with ``status`` (the one about to be written);
    None for kinds and objects no dashboard shows."""
    meta = raw.get("metadata") or {}
    name, spec = str(meta.get("name") or ""), raw.get("spec") or {}
    found: tuple[str, dict[str, Any]] | None
    if kind == trainingrun.KIND:
        found = _training_run(spec, status)
    elif kind == experiment.KIND:
        found = _experiment(name, spec, status)
    elif kind == learningpolicy.KIND:
        found = _policy(name, status)
    else:
        return None
    if found is None:
        return None
    policy, body = found
    return Summary(kind, str(meta.get("namespace") or ""), name, str(meta.get("uid") or ""), policy, body)
