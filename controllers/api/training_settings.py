"""Training settings: what a LearningPolicy declares about training and a TrainingRun freezes a copy of.

A TrainingRun copies the policy's training, data and gate settings at creation; keeping one definition
here means the copy can never drift from the policy's own schema. The LLM judge's settings live here
too: the judge makes preference pairs, the training data.
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
    endpoint_field,
    model_name_field,
    section,
    string_map,
)
from controllers.api.storage_settings import StorageAccess

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
    sft_weight: float = Field(
        default=0.0,
        ge=0.0,
        le=10.0,
        description="DPO only: weight of a supervised term on the chosen answer added to the DPO loss "
        "(TRL's loss_type sigmoid + sft, as in RPO); 0 is plain DPO. On small models and small batches "
        "of corrections, plain DPO can lower the likelihood of both answers; 1.0 keeps the chosen one up.",
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
    ray_address: str | None = endpoint_field(
        "Dashboard URL of the existing Ray cluster (RayJobsAPI only), e.g. http://ray-head:8265."
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
        description=(
            "Prefix under which each run keeps its dataset snapshot, checkpoints, adapter and manifest"
            " (one folder per TrainingRun): s3://, gs://, az://, or file:// on a shared volume."
        ),
    )
    storage: StorageAccess = section(
        StorageAccess, "How the operator, the trainer's pods and the model servers reach outputUri."
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
    endpoint: str | None = endpoint_field("Base URL of the OpenAI-compatible API (…/v1).")
    model: str | None = model_name_field("Judge model name, recorded with every verdict.")
    rubric: str = Field(
        default="Prefer the answer that is correct, complete and safe; then the shorter one.",
        max_length=4096,
        description="Instructions given to the judge, recorded with every verdict.",
    )
    api_key_secret_ref: SecretKeyReference | None = Field(
        default=None, description="Secret key holding the judge's API key."
    )
