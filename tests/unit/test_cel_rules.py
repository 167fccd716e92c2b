"""Every CEL rule in the generated CRDs, each with an object it accepts and one it rejects."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from controllers.api.cel import rules_in, validate
from controllers.api.policy_settings import RENAMED_WEIGHTS
from tests.schemas import DELETE, load_crds, load_examples, root_schema, set_path

CRDS = load_crds()
EXAMPLES = load_examples()


def patched(kind: str, changes: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(EXAMPLES[kind])
    for path, value in changes.items():
        set_path(obj, path, value)
    return obj


NON_INFERIORITY = (
    "criterion NonInferiority needs a regressionTolerance above 0: the margin a challenger may be worse by"
)


@dataclass
class RuleCase:
    kind: str
    message: str
    accepted: dict[str, Any]
    rejected: dict[str, Any]
    # For transition rules: the stored object the update starts from.
    old: dict[str, Any] | None = field(default=None)

    @property
    def id(self) -> str:
        return f"{self.kind}: {self.message}"


NO_TRACK = {"spec.track.agent": DELETE, "spec.track.role": DELETE}
JUDGE_ON = {"spec.pairSources.llmJudge.enabled": True}
ONLY_JUDGE = {
    "spec.pairSources.humanCorrections": False,
    "spec.pairSources.rewardGaps.enabled": False,
    "spec.pairSources.errorRecoveries": False,
    "spec.pairSources.explicit": False,
}
BANDIT = {"spec.strategy": "Bandit"}


def non_inferiority_case(kind: str) -> RuleCase:
    def rollout(tolerance: float) -> dict[str, object]:
        return patched(
            kind, {"spec.rollout.criterion": "NonInferiority", "spec.rollout.regressionTolerance": tolerance}
        )

    return RuleCase(kind, NON_INFERIORITY, accepted=rollout(0.02), rejected=rollout(0))


VOLUME = {"claimName": "kaizen-data", "mountPath": "/mnt/kaizen"}
STORAGE_PATHS = {
    "LearningPolicy": "spec.training.storage",
    "TrainingRun": "spec.training.storage",
    "ShadowModel": "spec.storage",
}


def shared_volume_case(kind: str, path: str) -> RuleCase:
    """A shared volume is a filesystem: an S3 endpoint beside it is a mistake the schema names."""
    return RuleCase(
        kind,
        "storage.volume is a shared filesystem: it takes no endpoint (that is for S3-compatible stores)",
        accepted=patched(kind, {f"{path}.volume": VOLUME}),
        rejected=patched(kind, {f"{path}.volume": VOLUME, f"{path}.endpoint": "http://minio:9000"}),
    )


CASES = [
    RuleCase(
        "LearningPolicy",
        "set at least one of agent, role or taskFamily",
        accepted=patched("LearningPolicy", {**NO_TRACK, "spec.track.taskFamily": "sql-migrations"}),
        rejected=patched("LearningPolicy", NO_TRACK),
    ),
    RuleCase(
        "LearningPolicy",
        "at least one reward weight must be positive",
        accepted=patched(
            "LearningPolicy",
            {"spec.reward": {"compileOk": 0, "testsPassed": 1, "errors": 0, "humanAccepted": 0}},
        ),
        rejected=patched(
            "LearningPolicy",
            {"spec.reward": {"compileOk": 0, "testsPassed": 0, "errors": 0, "humanAccepted": 0}},
        ),
    ),
    RuleCase(
        "LearningPolicy",
        "enable at least one pair source",
        accepted=patched(
            "LearningPolicy",
            {
                **ONLY_JUDGE,
                **JUDGE_ON,
                "spec.pairSources.llmJudge.endpoint": "http://judge:8000/v1",
                "spec.pairSources.llmJudge.model": "judge-13b",
            },
        ),
        rejected=patched("LearningPolicy", ONLY_JUDGE),
    ),
    RuleCase(
        "LearningPolicy",
        "endpoint and model are required when the judge is enabled",
        accepted=patched(
            "LearningPolicy",
            {
                **JUDGE_ON,
                "spec.pairSources.llmJudge.endpoint": "http://judge:8000/v1",
                "spec.pairSources.llmJudge.model": "judge-13b",
            },
        ),
        rejected=patched(
            "LearningPolicy", {**JUDGE_ON, "spec.pairSources.llmJudge.endpoint": "http://judge:8000/v1"}
        ),
    ),
    RuleCase(
        "LearningPolicy",
        "scaling.rayAddress is required when scaling.submission is RayJobsAPI",
        accepted=patched(
            "LearningPolicy",
            {
                "spec.training.scaling.submission": "RayJobsAPI",
                "spec.training.scaling.rayAddress": "http://ray-head:8265",
            },
        ),
        rejected=patched("LearningPolicy", {"spec.training.scaling.submission": "RayJobsAPI"}),
    ),
    RuleCase(
        "LearningPolicy",
        "sharedBase is required when mode is Shared",
        accepted=patched(
            "LearningPolicy", {"spec.serving.mode": "Dedicated", "spec.serving.sharedBase": DELETE}
        ),
        rejected=patched("LearningPolicy", {"spec.serving.sharedBase": DELETE}),
    ),
    RuleCase(
        "LearningPolicy",
        "minReplicas must not exceed maxReplicas",
        accepted=patched("LearningPolicy", {"spec.serving.minReplicas": 2, "spec.serving.maxReplicas": 2}),
        rejected=patched("LearningPolicy", {"spec.serving.minReplicas": 3, "spec.serving.maxReplicas": 2}),
    ),
    *(non_inferiority_case(kind) for kind in ("LearningPolicy", "Experiment")),
    *(shared_volume_case(kind, path) for kind, path in STORAGE_PATHS.items()),
    RuleCase(
        "TrainingRun",
        "spec is immutable; create a new TrainingRun",
        old=EXAMPLES["TrainingRun"],
        accepted=patched("TrainingRun", {"metadata.labels.team": "agents"}),
        rejected=patched("TrainingRun", {"spec.training.hyperparameters.learningRate": 0.001}),
    ),
    RuleCase(
        "TrainingRun",
        "scaling.rayAddress is required when scaling.submission is RayJobsAPI",
        accepted=patched(
            "TrainingRun",
            {
                "spec.training.scaling.submission": "RayJobsAPI",
                "spec.training.scaling.rayAddress": "https://ray.example:8265",
            },
        ),
        rejected=patched(
            "TrainingRun",
            {"spec.training.scaling.submission": "RayJobsAPI", "spec.training.scaling.rayAddress": DELETE},
        ),
    ),
    RuleCase(
        "ShadowModel",
        "baseModel is immutable; create a new ShadowModel",
        old=EXAMPLES["ShadowModel"],
        accepted=patched("ShadowModel", {"spec.serving.gpus": 2}),
        rejected=patched("ShadowModel", {"spec.baseModel.name": "Qwen/Qwen2.5-Coder-14B-Instruct"}),
    ),
    RuleCase(
        "ShadowModel",
        "adapter is immutable; create a new ShadowModel",
        old=EXAMPLES["ShadowModel"],
        accepted=patched("ShadowModel", {"spec.serving.maxReplicas": 3}),
        rejected=patched("ShadowModel", {"spec.adapter.digest": "sha256:" + "0" * 64}),
    ),
    RuleCase(
        "ShadowModel",
        "sharedBase is required when mode is Shared",
        accepted=patched("ShadowModel", {"spec.serving.mode": "Shared", "spec.serving.sharedBase": "base"}),
        rejected=patched("ShadowModel", {"spec.serving.mode": "Shared", "spec.serving.sharedBase": DELETE}),
    ),
    RuleCase(
        "ShadowModel",
        "minReplicas must not exceed maxReplicas",
        accepted=patched("ShadowModel", {"spec.serving.minReplicas": 0}),
        rejected=patched("ShadowModel", {"spec.serving.minReplicas": 5}),
    ),
    RuleCase(
        "Experiment",
        "strategy is immutable; create a new Experiment",
        old=EXAMPLES["Experiment"],
        accepted=patched("Experiment", {"spec.paused": True}),
        rejected=patched("Experiment", BANDIT),
    ),
    RuleCase(
        "Experiment",
        "an ABTest has exactly two variants, one of them the Champion",
        accepted=patched(
            "Experiment", {"spec.variants.0.role": "Challenger", "spec.variants.1.role": "Champion"}
        ),
        rejected=patched("Experiment", {"spec.variants.0.role": "Challenger"}),
    ),
    RuleCase(
        "Experiment",
        "bandit.explorationFloor times the number of variants must not exceed 1",
        accepted=patched("Experiment", {**BANDIT, "spec.bandit": {"explorationFloor": 0.5}}),
        rejected={},  # set below: needs a third variant
    ),
    RuleCase(
        "Experiment",
        "set exactly one of shadowModel or endpoint",
        accepted=patched(
            "Experiment",
            {"spec.variants.1.shadowModel": DELETE, "spec.variants.1.endpoint": "https://api.example/v1"},
        ),
        rejected=patched("Experiment", {"spec.variants.1.endpoint": "https://api.example/v1"}),
    ),
]
# A weight under its name before issue 22 is refused, naming the name that replaced it.
CASES += [
    RuleCase(
        "LearningPolicy",
        f"{old} was renamed to {new} (the run's own signal name): write {new}",
        accepted=patched("LearningPolicy", {f"spec.reward.{new}": 0.5}),
        rejected=patched("LearningPolicy", {f"spec.reward.{old}": 0.5}),
    )
    for old, new in RENAMED_WEIGHTS.items()
]

# A bandit over three variants with a 40% floor each would need 120% of the traffic.
_three = patched("Experiment", {**BANDIT, "spec.bandit": {"explorationFloor": 0.4}})
_three["spec"]["variants"].append({"name": "prompt-b", "shadowModel": "coder-dpo-0001", "promptVariant": "b"})
BANDIT_FLOOR_CASE = next(c for c in CASES if c.message.startswith("bandit.explorationFloor"))
BANDIT_FLOOR_CASE.rejected = _three


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rule_accepts_a_valid_object(case: RuleCase) -> None:
    schema = root_schema(CRDS[case.kind])
    assert validate(schema, case.accepted, case.old) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rule_rejects_an_invalid_object(case: RuleCase) -> None:
    schema = root_schema(CRDS[case.kind])
    messages = [v.message for v in validate(schema, case.rejected, case.old)]
    assert messages == [case.message]


def test_every_rule_in_the_crds_has_a_case() -> None:
    in_crds = {(kind, message) for kind, crd in CRDS.items() for _, _, message in rules_in(root_schema(crd))}
    covered = {(case.kind, case.message) for case in CASES}
    assert in_crds == covered


def test_every_example_passes_every_rule_on_create_and_on_an_unchanged_update() -> None:
    for kind, example in EXAMPLES.items():
        schema = root_schema(CRDS[kind])
        assert validate(schema, example) == [], kind
        assert validate(schema, example, old=example) == [], kind


def test_number_fields_are_doubles_as_in_kubernetes() -> None:
    # Integer literals in a `type: number` field must still compare with 0.0 (int + double is an error in CEL).
    policy = patched(
        "LearningPolicy", {"spec.reward": {"compileOk": 1, "testsPassed": 0, "errors": 0, "humanAccepted": 0}}
    )
    assert validate(root_schema(CRDS["LearningPolicy"]), policy) == []
