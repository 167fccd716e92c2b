"""Serving and rollout settings: how a LearningPolicy's adapters are served and earn live traffic.

A ShadowModel copies the policy's serving settings and an Experiment its rollout settings; keeping one
definition here means the copies can never drift from the policy's own schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from controllers.api.common import Duration, KaizenModel, Quantity, cel


class GuardrailMetric(StrEnum):
    LATENCY_P95 = "LatencyP95"
    ERROR_RATE = "ErrorRate"
    COST_PER_REQUEST = "CostPerRequest"


class Guardrail(KaizenModel):
    """A metric that can only veto: a challenger worse than this rolls back whatever its reward."""

    metric: GuardrailMetric = Field(description="The guarded metric.")
    max_relative_increase: float = Field(
        default=0.2,
        ge=0.0,
        le=10.0,
        description="Largest tolerated increase over the champion, as a fraction.",
    )


class TrafficUnit(StrEnum):
    USER = "User"
    SESSION = "Session"
    REQUEST = "Request"


class Criterion(StrEnum):
    SUPERIORITY = "Superiority"
    NON_INFERIORITY = "NonInferiority"


# 99 at most: at 100 % the champion gets no traffic to compare with (promotion gives the challenger all of it).
StepPercent = Annotated[int, Field(ge=1, le=99)]


class RolloutSettings(KaizenModel):
    """How a challenger earns traffic and how it is judged."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.criterion != 'NonInferiority' || self.regressionTolerance > 0.0",
                "criterion NonInferiority needs a regressionTolerance above 0: the margin a challenger may be worse by",
            ),
        )
    )

    steps: list[StepPercent] = Field(
        default_factory=lambda: [5, 25, 50],
        min_length=1,
        max_length=10,
        description="Challenger traffic percentages, in increasing order, advanced only when the evidence allows.",
    )
    unit: TrafficUnit = Field(
        default=TrafficUnit.USER,
        description="What sticks to a variant: a user, a session or a single request.",
    )
    min_samples_per_variant: int = Field(
        default=200,
        ge=20,
        le=10_000_000,
        description=(
            "No decision before each variant has this many rewards. The sequential test is valid at any"
            " sample size (it makes no normal approximation); at least 20 keeps its variance estimates and"
            " the guardrails from acting on a handful of requests."
        ),
    )
    alpha: float = Field(
        default=0.05,
        gt=0.0,
        le=0.2,
        description=(
            "Largest chance of a false rollback, and separately of a false promotion, over the whole"
            " experiment however often it is looked at."
        ),
    )
    min_detectable_effect: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description=(
            "Smallest reward difference worth detecting. The test is tuned to it, and a challenger shown"
            " unable to be better by this much stops early as Inconclusive (criterion Superiority)."
        ),
    )
    regression_tolerance: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description=(
            "How much worse than the champion the evidence must rule out before the challenger gets more"
            " traffic; with criterion NonInferiority, also the margin within which it may be promoted."
        ),
    )
    criterion: Criterion = Field(
        default=Criterion.SUPERIORITY,
        description=(
            "Superiority: promote only a challenger shown better, roll back one shown worse."
            " NonInferiority: promote one shown not worse by more than regressionTolerance (a cheaper or"
            " smaller model), roll back one shown worse by more than that."
        ),
    )
    guardrails: list[Guardrail] = Field(
        default_factory=lambda: [
            Guardrail(metric=GuardrailMetric.ERROR_RATE, max_relative_increase=0.1),
            Guardrail(metric=GuardrailMetric.LATENCY_P95, max_relative_increase=0.25),
        ],
        max_length=8,
        description="Metrics that can veto a promotion or force a rollback.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["metric"]},
    )
    max_duration: Duration = Field(
        default="72h",
        description=(
            "An experiment still undecided this long after its traffic started is Inconclusive; so is one"
            " naming a ShadowModel that does not exist or no longer serves, this long after it was created."
        ),
    )
    auto_promote: bool = Field(
        default=True, description="Promote a winning challenger without a person's approval."
    )


class ServingRuntime(StrEnum):
    VLLM = "vLLM"
    HUGGING_FACE = "HuggingFace"


class DeploymentMode(StrEnum):
    DEDICATED = "Dedicated"
    SHARED = "Shared"


class ServingSettings(KaizenModel):
    """How shadow models are served on KServe."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.mode != 'Shared' || has(self.sharedBase)",
                "sharedBase is required when mode is Shared",
            ),
            ("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"),
        )
    )

    runtime: ServingRuntime = Field(
        default=ServingRuntime.VLLM,
        description="KServe huggingface runtime backend; vLLM serves LoRA adapters.",
    )
    mode: DeploymentMode = Field(
        default=DeploymentMode.DEDICATED,
        description="Dedicated: one InferenceService per adapter. Shared: one more adapter on a shared base deployment.",
    )
    shared_base: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the shared base InferenceService (mode Shared).",
    )
    gpus: int = Field(default=1, ge=0, le=8, description="GPUs per replica.")
    cpu: Quantity = Field(default="4", description="CPU request per replica.")
    memory: Quantity = Field(default="24Gi", description="Memory request and limit per replica.")
    min_replicas: int = Field(default=1, ge=0, le=100, description="Fewest replicas; 0 allows scale to zero.")
    max_replicas: int = Field(default=1, ge=1, le=100, description="Most replicas.")
    max_loras: int = Field(
        default=4, ge=1, le=64, description="Adapters one vLLM replica keeps loaded at once."
    )
