"""Settings blocks that a LearningPolicy declares and its children receive as resolved copies.

A TrainingRun freezes a copy of the policy's training, data and gate settings at creation; an
Experiment copies the rollout settings. Keeping one definition here means the copies can never
drift from the policy's own schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from controllers.api.common import (
    Duration,
    Fraction,
    KaizenModel,
    LabelValue,
    Quantity,
    SecretKeyReference,
    StorageURI,
    Toleration,
    cel,
    section,
    string_map,
)

ModuleName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.]+$")]
ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\s]+$")]


class TrainingMethod(StrEnum):
    DPO = "DPO"
    SFT = "SFT"


class BaseModelRef(KaizenModel):
    """The frozen base model that adapters are trained on and served with."""

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="Model name as the serving runtime knows it (e.g. Qwen/Qwen2.5-Coder-7B-Instruct).",
    )
    uri: StorageURI = Field(
        description="Where the weights live (s3://, gs://, pvc://, hf:// or a local path for the embedded default)."
    )


class LoRASettings(KaizenModel):
    """The LoRA adapter's shape. With LoRA the frozen base doubles as the DPO reference model."""

    rank: int = Field(default=16, ge=1, le=256, description="Adapter rank r.")
    alpha: int = Field(
        default=32, ge=1, le=1024, description="Scaling numerator; the update is scaled by alpha/r."
    )
    dropout: float = Field(default=0.05, ge=0.0, le=0.5, description="Dropout on the adapter's input.")
    target_modules: list[ModuleName] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        max_length=16,
        description="Names of the linear layers that get adapters.",
    )


class Hyperparameters(KaizenModel):
    """Optimisation settings passed to TRL."""

    epochs: int = Field(default=1, ge=1, le=100, description="Passes over the training split.")
    learning_rate: float = Field(default=5.0e-5, gt=0.0, le=1.0, description="Peak learning rate.")
    beta: float = Field(
        default=0.1,
        gt=0.0,
        le=10.0,
        description="DPO temperature: how far the policy may move from the reference.",
    )
    batch_size: int = Field(default=4, ge=1, le=512, description="Per-worker batch size.")
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, le=512, description="Micro-batches per optimiser step."
    )
    max_length: int = Field(default=1024, ge=32, le=131072, description="Longest prompt + answer, in tokens.")
    seed: int = Field(
        default=42, ge=0, le=2**31 - 1, description="Seed for data order, splits and initialisation."
    )


class Submission(StrEnum):
    RAY_JOB = "RayJob"
    RAY_JOBS_API = "RayJobsAPI"


class ScalingSettings(KaizenModel):
    """Where and how wide the Ray Train job runs."""

    submission: Submission = Field(
        default=Submission.RAY_JOB,
        description="RayJob: an ephemeral KubeRay cluster per run. RayJobsAPI: submit to an existing Ray cluster.",
    )
    ray_address: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://[^\s]+$",
        description="Dashboard URL of the existing Ray cluster (RayJobsAPI only), e.g. http://ray-head:8265.",
    )
    image: ImageRef = Field(
        default="ghcr.io/kaizen-dev/trainer:0.1.0", description="Trainer image for RayJob pods."
    )
    workers: int = Field(default=1, ge=1, le=64, description="Ray Train workers (one GPU process each).")
    gpus_per_worker: int = Field(default=1, ge=0, le=8, description="GPUs per worker; 0 trains on CPU.")
    cpus_per_worker: int = Field(default=4, ge=1, le=128, description="CPUs per worker.")
    memory_per_worker: Quantity = Field(default="32Gi", description="Memory request and limit per worker.")
    node_selector: dict[str, LabelValue] = string_map("Node labels the workers must match (e.g. a GPU type).")
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=16, description="Tolerations for tainted GPU nodes."
    )


class TrainingSettings(KaizenModel):
    """What to train and how."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.scaling.submission != 'RayJobsAPI' || has(self.scaling.rayAddress)",
                "scaling.rayAddress is required when scaling.submission is RayJobsAPI",
            ),
        )
    )

    base_model: BaseModelRef = Field(description="The base model the adapter is trained on.")
    method: TrainingMethod = Field(
        default=TrainingMethod.DPO,
        description="DPO learns from preference pairs; SFT learns from accepted outputs per role.",
    )
    lora: LoRASettings = section(LoRASettings, "LoRA adapter shape.")
    hyperparameters: Hyperparameters = section(Hyperparameters, "Optimisation settings.")
    scaling: ScalingSettings = section(ScalingSettings, "Ray Train workers and their resources.")
    output_uri: StorageURI = Field(
        default="s3://kaizen-adapters",
        description="Prefix under which each run writes its adapter and manifest (one folder per TrainingRun).",
    )


class DataSettings(KaizenModel):
    """Which experience may become training data."""

    min_reward: Fraction = Field(
        default=0.0, description="Runs under this reward never yield a chosen answer."
    )
    require_review: bool = Field(
        default=False, description="Only pairs a person approved in the review queue are trainable."
    )
    scrub_pii: bool = Field(
        alias="scrubPII",
        default=True,
        description="Remove e-mails, phone numbers, IPs, card numbers and secrets before export.",
    )
    max_age: Duration = Field(default="30d", description="Experience older than this is left out.")
    eval_fraction: float = Field(
        default=0.1, ge=0.01, le=0.5, description="Share of prompts held out for evaluation."
    )


class OfflineGate(KaizenModel):
    """What an adapter must reach on the held-out split before it may face live traffic."""

    min_preference_accuracy: Fraction = Field(
        default=0.6, description="Share of held-out pairs where the adapter prefers the chosen answer."
    )
    min_reward_margin: float = Field(
        default=0.0,
        ge=-100.0,
        le=100.0,
        description="Mean implicit reward margin (chosen - rejected) on held-out pairs.",
    )


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


StepPercent = Annotated[int, Field(ge=1, le=100)]


class RolloutSettings(KaizenModel):
    """How a challenger earns traffic and how it is judged."""

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
        ge=10,
        le=10_000_000,
        description="No decision before each variant has this many rewards.",
    )
    alpha: float = Field(
        default=0.05, gt=0.0, le=0.2, description="Error rate of the always-valid sequential test."
    )
    min_detectable_effect: float = Field(
        default=0.05, gt=0.0, le=1.0, description="Smallest reward difference worth detecting."
    )
    regression_tolerance: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="A challenger this much worse than the champion is rolled back.",
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
        default="72h", description="An experiment still undecided after this is Inconclusive."
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


class JudgeSettings(KaizenModel):
    """An LLM judge behind any OpenAI-compatible endpoint that picks the better of two answers."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!self.enabled || (has(self.endpoint) && has(self.model))",
                "endpoint and model are required when the judge is enabled",
            ),
        )
    )

    enabled: bool = Field(default=False, description="Ask the judge to compare attempts at the same task.")
    endpoint: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://[^\s]+$",
        description="Base URL of the OpenAI-compatible API (…/v1).",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Judge model name, recorded with every verdict.",
    )
    rubric: str = Field(
        default="Prefer the answer that is correct, complete and safe; then the shorter one.",
        max_length=4096,
        description="Instructions given to the judge, recorded with every verdict.",
    )
    api_key_secret_ref: SecretKeyReference | None = Field(
        default=None, description="Secret key holding the judge's API key."
    )
