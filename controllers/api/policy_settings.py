"""Two LearningPolicy settings: how a run's reward is weighed (``spec.reward``) and how much of the
track's finished work is kept (``spec.history``)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from controllers.api.common import Fraction, KaizenModel, cel

# The weights' names before v1alpha1 named them after the run's own signals (issue 22). The old names
# stay in the schema only so that the API server does not prune them silently: a CEL rule (and the
# operator's own check of it on servers without CEL) refuses each one with the name that replaced it.
RENAMED_WEIGHTS = {
    "compile": "compileOk",
    "tests": "testsPassed",
    "errorRate": "errors",
    "humanAcceptance": "humanAccepted",
}


def _reward_schema(schema: dict[str, Any]) -> None:
    properties = schema.setdefault("properties", {})
    for old, new in RENAMED_WEIGHTS.items():
        properties[old] = {
            "type": "number",
            "minimum": 0.0,
            "maximum": 1.0,
            "description": f"Renamed to {new}; a policy that still sets {old} is refused.",
        }
    rules = (
        (
            "self.compileOk + self.testsPassed + self.errors + self.humanAccepted > 0.0",
            "at least one reward weight must be positive",
        ),
        *(
            (f"!has(self.{old})", f"{old} was renamed to {new} (the run's own signal name): write {new}")
            for old, new in RENAMED_WEIGHTS.items()
        ),
    )
    schema.update(cel(*rules))


class RewardWeights(KaizenModel):
    """Weights of the composite reward computed for every run (each signal scaled to 0..1). Each weight
    is named after the run signal it weighs (``signals.compileOk``, ``signals.testsPassed``, ...)."""

    model_config = ConfigDict(json_schema_extra=_reward_schema)

    compile_ok: Fraction = Field(
        default=0.25, description="Weight of the run's signals.compileOk (the code compiled or parsed)."
    )
    tests_passed: Fraction = Field(
        default=0.25, description="Weight of the tests' pass rate, signals.testsPassed / signals.testsTotal."
    )
    errors: Fraction = Field(
        default=0.25,
        description="Weight of 1 - the error rate of signals.lintErrors, typeErrors and schemaErrors (n in all: n / (n + 1)).",
    )
    human_accepted: Fraction = Field(
        default=0.25,
        description="Weight of a person's verdict on the run (feedback accepted, thumbs, or a rating of 4+).",
    )


class HistoryLimits(KaizenModel):
    """How much of the track's finished work is kept, like a CronJob's history limits: of each kind,
    the newest this many stay and older ones are deleted (controllers.reconcile.history). Never
    deleted, whatever the limits: unfinished work (a running TrainingRun, an unsettled Experiment, a
    Challenger or Champion ShadowModel, a model still routed), the champion and the champion before it
    with the runs that trained them, and every model an unsettled Experiment names. 0 keeps nothing
    of that kind beyond those."""

    succeeded_runs_limit: int = Field(
        default=10, ge=0, le=1000, description="Succeeded TrainingRuns to keep (trained, gate met or not)."
    )
    failed_runs_limit: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="Failed TrainingRuns to keep (job failed, or nothing to train on).",
    )
    settled_experiments_limit: int = Field(
        default=10, ge=0, le=1000, description="Experiments to keep whose decision and its effects are final."
    )
    retired_models_limit: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Retired and RolledBack ShadowModels to keep whose deployment is already taken down.",
    )


class ReviewSettings(KaizenModel):
    """How people review this track's pairs in the workbench (``POST /v1/review/reservations``). The
    operator syncs these into the store with the reward weights; the most specific policy matching a
    pair's track decides for it."""

    reviewers_per_item: int = Field(
        default=1,
        ge=1,
        le=10,
        description="How many reviewers must judge each pair; it leaves the queue with that many verdicts "
        "and is approved when a strict majority prefers its chosen answer.",
    )
    guidelines: str = Field(
        default="",
        max_length=8192,
        description="Guidelines shown to reviewers beside each item (plain text).",
    )
