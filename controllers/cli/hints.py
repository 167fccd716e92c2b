"""The "Next:" line of ``kaizen describe``: what a person on call can run, from the Ready condition.

One table, so that each new on-call command adds its line here and nowhere else. A key is the kind
(or ``*`` for any kind) and the Ready condition's reason; a paused object (``spec.paused: true``) is
looked up under the reason ``Paused`` first, because its Ready reason may still say what it did
before the pause (a policy keeps ``Watching``). Each value is one or more commands, formatted with
the object's ``kind`` (lower case), ``plural``, ``name``, ``namespace`` and ``policy``
(``spec.policyRef``).
"""

from __future__ import annotations

from typing import Any

ANY = "*"
PAUSED = "Paused"

NEXT_STEPS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Experiment", "AwaitingApproval"): ("kaizen approve experiment {name} -n {namespace}",),
    ("Experiment", "ShadowModelNotFound"): ("kaizen get shadowmodels -n {namespace}",),
    ("Experiment", "ShadowModelOutOfService"): ("kaizen get shadowmodels -n {namespace}",),
    ("TrainingRun", "JobFailed"): (
        "kaizen logs trainingrun {name} -n {namespace}",
        "kaizen retry trainingrun {name} -n {namespace}",
    ),
    ("TrainingRun", "NoTrainingData"): ("kaizen describe learningpolicy {policy} -n {namespace}",),
    (ANY, "PolicyNotFound"): ("kaizen get learningpolicies -n {namespace}",),
    (ANY, "InvalidSpec"): ("kubectl edit {plural} {name} -n {namespace}  (the message names the field)",),
    (ANY, PAUSED): ("kaizen resume {kind} {name} -n {namespace}",),
}


def next_steps(obj: dict[str, Any], plural: str, reason: str) -> list[str]:
    """The commands the table suggests for this object, formatted; [] when nothing is obvious."""
    kind = str(obj.get("kind", ""))
    spec = obj.get("spec") or {}
    reasons = ([PAUSED] if spec.get("paused") is True else []) + ([reason] if reason else [])
    values = {
        "kind": kind.lower(),
        "plural": plural,
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"].get("namespace", "default"),
        "policy": spec.get("policyRef") or "<policy>",
    }
    for wanted in reasons:
        templates = NEXT_STEPS.get((kind, wanted)) or NEXT_STEPS.get((ANY, wanted))
        if templates:
            return [template.format(**values) for template in templates]
    return []
