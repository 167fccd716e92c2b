"""Which objects are at rest: finished, with every effect of their last decision in place.

The resync loop reconciles an object at rest only every ``Settings.rest_seconds`` (after a restart,
at a random point of that interval), so the work of each pass follows the objects that are still
moving, not everything a namespace has accumulated: a track with two hundred finished runs should
not make the operator slower to notice the two hundred and first. An edited spec (generation ahead
of observedGeneration) is never at rest. Pure functions of the stored object.
"""

from __future__ import annotations

from typing import Any

from controllers.api.experiment import Decision, Strategy
from controllers.api.shadowmodel import Role
from controllers.decisions.experiments.drift_watch import DRIFT, FINAL_STAGES

# The Ready message of a retired model whose deployment a route still needs (controllers.reconcile.shadows).
STILL_ROUTED = "its deployment stays up while route"
FINAL_DECISIONS = {Decision.PROMOTE.value, Decision.ROLL_BACK.value, Decision.INCONCLUSIVE.value}


def condition(raw: dict[str, Any], type_: str) -> dict[str, Any]:
    for found in (raw.get("status") or {}).get("conditions") or []:
        if found.get("type") == type_:
            return dict(found)
    return {}


def _current(raw: dict[str, Any]) -> bool:
    status = raw.get("status") or {}
    return bool(status.get("observedGeneration") == raw["metadata"].get("generation"))


def training_run(raw: dict[str, Any]) -> bool:
    """Finished (succeeded, failed or gated out): its ShadowModel was created before it said so."""
    return _current(raw) and bool((raw.get("status") or {}).get("completionTime"))


def shadow_model(raw: dict[str, Any]) -> bool:
    """Retired or rolled back, and its deployment already taken down."""
    role = (raw.get("status") or {}).get("role")
    if not _current(raw) or role not in (Role.RETIRED.value, Role.ROLLED_BACK.value):
        return False
    ready = condition(raw, "Ready")
    return ready.get("reason") == role and STILL_ROUTED not in str(ready.get("message", ""))


def experiment(raw: dict[str, Any]) -> bool:
    """Decided, the decision's effects applied, and (after a promotion) the drift watch over."""
    status = raw.get("status") or {}
    decision = status.get("decision")
    if not _current(raw) or decision not in FINAL_DECISIONS:
        return False
    if condition(raw, "DecisionApplied").get("status") != "True":
        return False
    if decision != Decision.PROMOTE.value or raw["spec"].get("strategy") != Strategy.AB_TEST.value:
        return True  # only an A/B promotion is watched for drift afterwards
    return condition(raw, DRIFT).get("reason") in {stage.value for stage in FINAL_STAGES}


def never(raw: dict[str, Any]) -> bool:
    """Policies keep counting their data and watching their triggers."""
    return False
