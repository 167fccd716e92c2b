"""TrainingRun: one training attempt, with its spec frozen at creation."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from controllers.api.common import (
    Condition,
    Digest,
    Duration,
    KaizenModel,
    ObjectName,
    StorageURI,
    cel,
    conditions_field,
    observed_generation_field,
    section,
)
from controllers.api.intervention import Intervention, interventions_field
from controllers.api.kindinfo import (
    READY_COLUMN,
    REASON_COLUMN,
    KindInfo,
    PrinterColumn,
    status_is_current,
)
from controllers.api.training_settings import DataSettings, OfflineGate, TrainingSettings

KIND = "TrainingRun"


class TriggerReason(StrEnum):
    THRESHOLD = "Threshold"
    SCHEDULE = "Schedule"
    MANUAL = "Manual"


class RetrySettings(KaizenModel):
    """How transient failures (preempted nodes, lost Ray heads) are retried."""

    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Job submissions at most, the first included."
    )
    backoff: Duration = Field(default="30s", description="Wait before the second attempt; doubles each time.")


class TrainingRunSpec(KaizenModel):
    """A resolved, frozen copy of a policy's training settings. Create a new run to change anything."""

    model_config = ConfigDict(
        json_schema_extra=cel(("self == oldSelf", "spec is immutable; create a new TrainingRun"))
    )

    policy_ref: ObjectName | None = Field(
        default=None,
        description="The LearningPolicy this run trains for; unset for a run created by hand.",
    )
    trigger: TriggerReason = Field(default=TriggerReason.MANUAL, description="What started this run.")
    training: TrainingSettings = Field(description="What to train and how.")
    data: DataSettings = section(DataSettings, "Which experience may become training data.")
    gate: OfflineGate = section(OfflineGate, "What the adapter must reach before a ShadowModel is created.")
    retry: RetrySettings = section(RetrySettings, "Retries of transient failures.")


class DatasetStatus(KaizenModel):
    """The snapshot this run trained on."""

    uri: StorageURI = Field(description="Where the snapshot was written.")
    content_hash: Digest = Field(
        description="Hash of the snapshot's content; the same data gives the same hash."
    )
    watermark: datetime = Field(description="Newest experience included.")
    train_rows: int = Field(default=0, ge=0, description="Rows in the training split.")
    eval_rows: int = Field(default=0, ge=0, description="Rows in the held-out split.")
    scrubbed_values: int = Field(default=0, ge=0, description="PII and secret values removed.")


class AdapterStatus(KaizenModel):
    """The trained adapter."""

    uri: StorageURI = Field(
        description="Folder holding adapter_model.safetensors, its config and the manifest."
    )
    digest: Digest = Field(description="sha256 of adapter_model.safetensors.")


class TrainingMetrics(KaizenModel):
    """Metrics from the trainer's manifest."""

    train_loss: float | None = Field(default=None, description="Final training loss.")
    eval_loss: float | None = Field(default=None, description="Loss on the held-out split.")
    preference_accuracy: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Held-out pairs where the adapter prefers the chosen answer.",
    )
    reward_margin: float | None = Field(
        default=None, description="Mean implicit reward margin on held-out pairs."
    )
    steps: int | None = Field(default=None, ge=0, description="Optimiser steps taken.")
    gpu_hours: float | None = Field(default=None, ge=0.0, description="GPU-hours the job consumed.")


class TrainingRunStatus(KaizenModel):
    """Observed state of the attempt."""

    observed_generation: int = observed_generation_field()
    conditions: list[Condition] = conditions_field()
    interventions: list[Intervention] = interventions_field()
    attempts: int = Field(default=0, ge=0, description="Job submissions so far.")
    submission_id: str = Field(
        default="", max_length=253, description="Deterministic Ray submission id of the current attempt."
    )
    job_name: str = Field(default="", max_length=253, description="Name of the RayJob (RayJob submission).")
    next_retry_time: datetime | None = Field(default=None, description="When the next attempt may start.")
    dataset: DatasetStatus | None = Field(default=None, description="The snapshot trained on.")
    adapter: AdapterStatus | None = Field(default=None, description="The trained adapter.")
    metrics: TrainingMetrics | None = Field(default=None, description="Metrics from the trainer's manifest.")
    shadow_model: str = Field(
        default="", max_length=253, description="The ShadowModel created from this run."
    )
    start_time: datetime | None = Field(default=None, description="When the first attempt started.")
    completion_time: datetime | None = Field(
        default=None, description="When the run succeeded or failed for good."
    )


class TrainingRun(KaizenModel):
    spec: TrainingRunSpec
    status: TrainingRunStatus | None = None


def at_rest(raw: dict[str, Any]) -> bool:
    """Finished (succeeded, failed or gated out): its ShadowModel was created before it said so."""
    return status_is_current(raw) and bool((raw.get("status") or {}).get("completionTime"))


INFO = KindInfo(
    model=TrainingRun,
    plural="trainingruns",
    short_names=("tr", "trun"),
    status_model=TrainingRunStatus,
    columns=(
        READY_COLUMN,
        REASON_COLUMN,
        PrinterColumn("Policy", "string", ".spec.policyRef"),
        PrinterColumn("Method", "string", ".spec.training.method"),
        PrinterColumn("Attempts", "integer", ".status.attempts"),
        PrinterColumn("Accuracy", "number", ".status.metrics.preferenceAccuracy"),
        PrinterColumn("Shadow Model", "string", ".status.shadowModel", wide_only=True),
        PrinterColumn("Dataset", "string", ".status.dataset.contentHash", wide_only=True),
    ),
    at_rest=at_rest,
    frozen_spec=True,
)
