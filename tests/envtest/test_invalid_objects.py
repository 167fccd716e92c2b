"""Bad specs are rejected by the API server itself, and the error names the offending field.

Each case starts from a valid example, breaks exactly one thing, applies it with kubectl, and
expects a rejection whose message contains the field's path. Nothing may be stored.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.controlplane import ControlPlane
from tests.schemas import DELETE, load_examples, set_path

EXAMPLES = load_examples()


@dataclass(frozen=True)
class Invalid:
    kind: str
    changes: tuple[tuple[str, Any], ...]
    field: str  # the path the server's message must name

    @property
    def id(self) -> str:
        shown = ", ".join(
            f"{p}={'<removed>' if v is DELETE else json.dumps(v)[:24]}" for p, v in self.changes
        )
        return f"{self.kind}[{shown}]"

    def body(self, namespace: str) -> dict[str, Any]:
        obj = copy.deepcopy(EXAMPLES[self.kind])
        obj["metadata"]["namespace"] = namespace
        for path, value in self.changes:
            set_path(obj, path, value)
        return obj


def bad(kind: str, path: str, value: Any, field: str | None = None, **more: Any) -> Invalid:
    changes = ((path, value), *((p.replace("__", "."), v) for p, v in more.items()))
    return Invalid(kind, changes, field or path)


LP, TR, SM, EXP = "LearningPolicy", "TrainingRun", "ShadowModel", "Experiment"
TOO_LONG = "x" * 64

CASES = [
    # LearningPolicy: track
    bad(LP, "spec.track.agent", TOO_LONG),
    bad(LP, "spec.track.agent", "Coder"),
    bad(LP, "spec.track.role", ""),
    bad(LP, "spec.track.taskFamily", "sql migrations"),
    # reward weights
    bad(LP, "spec.reward.compileOk", 1.5),
    bad(LP, "spec.reward.testsPassed", -0.1),
    bad(LP, "spec.reward.errors", "high"),
    # pair sources
    bad(LP, "spec.pairSources.humanCorrections", "yes"),
    bad(LP, "spec.pairSources.rewardGaps.minMargin", 0),
    bad(LP, "spec.pairSources.rewardGaps.minMargin", 2),
    bad(LP, "spec.pairSources.llmJudge.endpoint", "ftp://judge.internal/v1"),
    bad(LP, "spec.pairSources.llmJudge.rubric", "r" * 5000),
    bad(
        LP,
        "spec.pairSources.llmJudge.apiKeySecretRef",
        {"key": "token"},
        "spec.pairSources.llmJudge.apiKeySecretRef.name",
    ),
    # data
    bad(LP, "spec.data.minReward", 2),
    bad(LP, "spec.data.maxAge", "30 days"),
    bad(LP, "spec.data.evalFraction", 0.9),
    bad(LP, "spec.data.scrubPII", "no"),
    # trigger
    bad(LP, "spec.trigger.minNewPairs", 0),
    bad(LP, "spec.trigger.minNewPairs", 2.5),
    bad(LP, "spec.trigger.schedule", "every day at 3"),
    bad(LP, "spec.trigger.schedule", "0 3 * *"),
    bad(LP, "spec.trigger.schedule", "0 3 * * * *"),
    bad(LP, "spec.trigger.schedule", "@fortnightly"),
    bad(LP, "spec.trigger.cooldown", "soon"),
    bad(LP, "spec.trigger.budget.gpuHours", -1),
    bad(LP, "spec.trigger.budget.window", "1"),
    # training
    bad(LP, "spec.training", DELETE),
    bad(LP, "spec.training.baseModel", DELETE),
    bad(LP, "spec.training.baseModel.name", DELETE),
    bad(LP, "spec.training.baseModel.uri", "weights"),
    bad(LP, "spec.training.method", "PPO"),
    bad(LP, "spec.training.lora.rank", 0),
    bad(LP, "spec.training.lora.rank", 512),
    bad(LP, "spec.training.lora.alpha", "32"),
    bad(LP, "spec.training.lora.dropout", 0.9),
    bad(LP, "spec.training.lora.targetModules", []),
    bad(LP, "spec.training.lora.targetModules", [f"layer_{i}" for i in range(17)]),
    bad(LP, "spec.training.lora.targetModules", ["q proj"], "spec.training.lora.targetModules[0]"),
    bad(LP, "spec.training.hyperparameters.epochs", 0),
    bad(LP, "spec.training.hyperparameters.learningRate", 0),
    bad(LP, "spec.training.hyperparameters.sftWeight", -0.5),
    bad(LP, "spec.training.hyperparameters.sftWeight", 11),
    bad(LP, "spec.training.hyperparameters.beta", 20),
    bad(LP, "spec.training.hyperparameters.batchSize", 1000),
    bad(LP, "spec.training.hyperparameters.maxLength", 16),
    bad(LP, "spec.training.hyperparameters.seed", -1),
    bad(LP, "spec.training.scaling.submission", "Slurm"),
    bad(LP, "spec.training.scaling.rayAddress", "ray-head:8265"),
    bad(LP, "spec.training.scaling.workers", 65),
    bad(LP, "spec.training.scaling.gpusPerWorker", 9),
    bad(LP, "spec.training.scaling.memoryPerWorker", "lots"),
    bad(LP, "spec.training.scaling.image", "trainer image:latest"),
    bad(
        LP,
        "spec.training.scaling.tolerations.0.operator",
        "Maybe",
        "spec.training.scaling.tolerations[0].operator",
    ),
    bad(
        LP,
        "spec.training.scaling.tolerations.0.effect",
        "Sometimes",
        "spec.training.scaling.tolerations[0].effect",
    ),
    bad(LP, "spec.training.scaling.nodeSelector", {f"k{i}": "v" for i in range(33)}),
    bad(
        LP, "spec.training.scaling.nodeSelector", {"gpu": "g" * 64}, "spec.training.scaling.nodeSelector.gpu"
    ),
    bad(LP, "spec.training.outputUri", "not a uri"),
    # gate
    bad(LP, "spec.gate.minPreferenceAccuracy", 1.2),
    bad(LP, "spec.gate.minRewardMargin", 1000),
    # serving
    bad(LP, "spec.serving.runtime", "TGI"),
    bad(LP, "spec.serving.mode", "Together"),
    bad(LP, "spec.serving.sharedBase", "Qwen_Base"),
    bad(LP, "spec.serving.gpus", -1),
    bad(LP, "spec.serving.cpu", "four"),
    bad(LP, "spec.serving.maxReplicas", 0),
    bad(LP, "spec.serving.maxLoras", 100),
    # rollout
    bad(LP, "spec.rollout.steps", [0], "spec.rollout.steps[0]"),
    bad(LP, "spec.rollout.steps", [5, 150], "spec.rollout.steps[1]"),
    bad(LP, "spec.rollout.steps", list(range(1, 12))),
    bad(LP, "spec.rollout.unit", "Tenant"),
    bad(LP, "spec.rollout.alpha", 0.5),
    bad(LP, "spec.rollout.minSamplesPerVariant", 5),
    bad(LP, "spec.rollout.minDetectableEffect", 0),
    bad(LP, "spec.rollout.regressionTolerance", 3),
    bad(LP, "spec.rollout.guardrails.0.metric", "Vibes", "spec.rollout.guardrails[0].metric"),
    bad(
        LP,
        "spec.rollout.guardrails.0.maxRelativeIncrease",
        11,
        "spec.rollout.guardrails[0].maxRelativeIncrease",
    ),
    bad(LP, "spec.rollout.maxDuration", "forever"),
    bad(LP, "spec.rollout.autoPromote", "sure"),
    # history limits
    bad(LP, "spec.history.succeededRunsLimit", -1),
    bad(LP, "spec.history.failedRunsLimit", 1001),
    bad(LP, "spec.history.settledExperimentsLimit", "all"),
    bad(LP, "spec.history.retiredModelsLimit", 2.5),
    bad(LP, "spec.paused", "false"),
    bad(LP, "spec", DELETE),
    # TrainingRun
    bad(TR, "spec.trigger", "Cron"),
    bad(TR, "spec.policyRef", "Coder_DPO"),
    bad(TR, "spec.retry.maxAttempts", 0),
    bad(TR, "spec.retry.backoff", "1 minute"),
    bad(TR, "spec.training.hyperparameters.gradientAccumulationSteps", 1024),
    bad(TR, "spec.data.minReward", -1),
    # ShadowModel
    bad(SM, "spec.adapter", DELETE),
    bad(SM, "spec.adapter.uri", DELETE),
    bad(SM, "spec.adapter.digest", "md5:0123456789abcdef"),
    bad(SM, "spec.adapter.digest", "sha256:" + "G" * 64),
    bad(SM, "spec.trainingRunRef", "r" * 254),
    bad(SM, "spec.serving.memory", "24 GB"),
    # Experiment
    bad(EXP, "spec.strategy", "EpsilonGreedy"),
    bad(EXP, "spec.variants", [{"name": "only", "shadowModel": "coder-dpo-0001"}]),
    bad(EXP, "spec.variants", [{"name": f"v{i}", "shadowModel": "m"} for i in range(9)]),
    bad(EXP, "spec.variants.0.name", "Champion!", "spec.variants[0].name"),
    bad(EXP, "spec.variants.1.name", "champion", "spec.variants[1]"),
    bad(EXP, "spec.variants.1.role", "Referee", "spec.variants[1].role"),
    bad(EXP, "spec.variants.0.costPerRequest", -1, "spec.variants[0].costPerRequest"),
    bad(EXP, "spec.variants.0.endpoint", "not-a-url", "spec.variants[0].endpoint"),
    # a variant's endpoint becomes a route: no credentials, query or fragment to smuggle in
    bad(EXP, "spec.variants.0.endpoint", "http://user:pw@model.team.svc/v1", "spec.variants[0].endpoint"),
    bad(
        EXP, "spec.variants.0.endpoint", "http://model.team.svc/v1?next=http://x", "spec.variants[0].endpoint"
    ),
    bad(EXP, "spec.variants.0.name", DELETE, "spec.variants[0].name"),
    bad(EXP, "spec.bandit.explorationFloor", 0.9),
    bad(EXP, "spec.rollout.steps", [], "spec.rollout.steps"),
]


def test_there_are_at_least_sixty_distinct_cases() -> None:
    assert len({case.id for case in CASES}) == len(CASES) >= 60
    assert {case.kind for case in CASES} == {LP, TR, SM, EXP}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_invalid_object_is_rejected_naming_its_field(
    control_plane: ControlPlane, namespace: str, case: Invalid
) -> None:
    # --validate=false: the API server, not kubectl's client-side check, must be the one that refuses.
    body = json.dumps(case.body(namespace))
    result = control_plane.kubectl("apply", "--validate=false", "-f", "-", stdin=body, check=False)
    assert result.returncode != 0, f"accepted: {case.id}"
    assert "is invalid" in result.stderr, result.stderr
    # v1.20 names list items without their index (spec.variants.name); newer servers add it.
    named = re.sub(r"\[\d+\]", "", case.field)
    assert named in re.sub(r"\[\d+\]", "", result.stderr), (
        f"error does not name {case.field}: {result.stderr}"
    )
    stored = control_plane.kubectl("get", "kaizen", "-n", namespace, "-o", "name").stdout
    assert stored.strip() == "", f"something was stored: {stored}"
