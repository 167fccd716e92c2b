"""ShadowModel: one adapter version on one base model, served by KServe, with its role in the track."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from controllers.api.common import (
    Condition,
    Digest,
    KaizenModel,
    ObjectName,
    StorageURI,
    cel,
    conditions_field,
    observed_generation_field,
    section,
)
from controllers.api.kindinfo import (
    READY,
    READY_COLUMN,
    REASON_COLUMN,
    KindInfo,
    PrinterColumn,
    condition,
    status_is_current,
)
from controllers.api.serving_settings import ServingSettings
from controllers.api.storage_settings import StorageAccess
from controllers.api.training_settings import BaseModelRef

KIND = "ShadowModel"
# In the Ready message of a retired model whose deployment a route still needs (controllers.reconcile.shadows).
STILL_ROUTED = "its deployment stays up while route"


class AdapterRef(KaizenModel):
    """The LoRA adapter to serve."""

    uri: StorageURI = Field(description="Folder holding adapter_model.safetensors and adapter_config.json.")
    digest: Digest = Field(
        description="sha256 of adapter_model.safetensors; the operator checks it before serving."
    )


class ShadowModelSpec(KaizenModel):
    """Which adapter to serve and how. The adapter and base model are fixed for the object's life."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("self.baseModel == oldSelf.baseModel", "baseModel is immutable; create a new ShadowModel"),
            ("self.adapter == oldSelf.adapter", "adapter is immutable; create a new ShadowModel"),
        )
    )

    policy_ref: ObjectName | None = Field(
        default=None,
        description="The LearningPolicy this model belongs to.",
    )
    training_run_ref: ObjectName | None = Field(
        default=None,
        description="The TrainingRun that produced the adapter (kept for lineage after the run is deleted).",
    )
    base_model: BaseModelRef = Field(description="The base model the adapter was trained on.")
    adapter: AdapterRef = Field(description="The adapter to serve.")
    serving: ServingSettings = section(ServingSettings, "How it is served.")
    storage: StorageAccess = section(
        StorageAccess,
        "How the model servers reach the adapter's URI (copied from the run's training.storage).",
    )


class Role(StrEnum):
    CHALLENGER = "Challenger"
    CHAMPION = "Champion"
    RETIRED = "Retired"
    ROLLED_BACK = "RolledBack"


class OfflineEvaluation(KaizenModel):
    """Held-out metrics from the TrainingRun, copied for people comparing versions."""

    preference_accuracy: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Held-out preference accuracy."
    )
    reward_margin: float | None = Field(default=None, description="Mean implicit reward margin.")
    eval_loss: float | None = Field(default=None, description="Held-out loss.")


class Evidence(KaizenModel):
    """The statistics that caused a rollback."""

    experiment: str = Field(default="", max_length=253, description="The Experiment that decided.")
    samples: int = Field(default=0, ge=0, description="Rewards seen from this model.")
    mean_delta: float | None = Field(
        default=None,
        description="Challenger mean reward minus the champion's (for drift: the recent window's minus the baseline's).",
    )
    p_value: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Always-valid p-value at the decision."
    )
    guardrail: str = Field(default="", max_length=64, description="The guardrail that vetoed, if one did.")
    reason: str = Field(
        default="",
        max_length=1024,
        description="What the deciding check said: the experiment's decision, or drift after promotion.",
    )


class ShadowModelStatus(KaizenModel):
    """Observed state of the served adapter."""

    observed_generation: int = observed_generation_field()
    conditions: list[Condition] = conditions_field()
    role: Role = Field(default=Role.CHALLENGER, description="Challenger, Champion, Retired or RolledBack.")
    role_reason: str = Field(default="", max_length=1024, description="Why the model has its role.")
    role_changed_at: datetime | None = Field(default=None, description="When the role last changed.")
    inference_service: str = Field(
        default="", max_length=253, description="The KServe InferenceService serving it."
    )
    endpoint: str = Field(
        default="", max_length=1024, description="OpenAI-compatible base URL of the served adapter."
    )
    served_model_name: str = Field(default="", max_length=256, description="Model name to send in requests.")
    evaluation: OfflineEvaluation | None = Field(default=None, description="Held-out metrics.")
    rollback_evidence: Evidence | None = Field(default=None, description="What caused a rollback.")


class ShadowModel(KaizenModel):
    spec: ShadowModelSpec
    status: ShadowModelStatus | None = None


def at_rest(raw: dict[str, Any]) -> bool:
    """Retired or rolled back, and its deployment already taken down."""
    role = (raw.get("status") or {}).get("role")
    if not status_is_current(raw) or role not in (Role.RETIRED.value, Role.ROLLED_BACK.value):
        return False
    ready = condition(raw, READY)
    return ready.get("reason") == role and STILL_ROUTED not in str(ready.get("message", ""))


INFO = KindInfo(
    model=ShadowModel,
    plural="shadowmodels",
    short_names=("sm", "shadow"),
    status_model=ShadowModelStatus,
    columns=(
        READY_COLUMN,
        PrinterColumn("Role", "string", ".status.role"),
        REASON_COLUMN,
        PrinterColumn("Policy", "string", ".spec.policyRef"),
        PrinterColumn("Accuracy", "number", ".status.evaluation.preferenceAccuracy", wide_only=True),
        PrinterColumn("Endpoint", "string", ".status.endpoint", wide_only=True),
    ),
    at_rest=at_rest,
)
