"""LearningPolicy: one learning track, from the experience it learns from to how its adapters roll out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from controllers.api.common import (
    CRON,
    DNS_LABEL,
    Condition,
    Duration,
    KaizenModel,
    ObjectName,
    cel,
    conditions_field,
    observed_generation_field,
    section,
)
from controllers.api.intervention import Intervention, interventions_field
from controllers.api.kindinfo import READY_COLUMN, REASON_COLUMN, KindInfo, PrinterColumn
from controllers.api.policy_settings import HistoryLimits, ReviewSettings, RewardWeights
from controllers.api.serving_settings import RolloutSettings, ServingSettings
from controllers.api.training_settings import DataSettings, JudgeSettings, OfflineGate, TrainingSettings

KIND = "LearningPolicy"


class Track(KaizenModel):
    """Which experience belongs to this policy. Set at least one; runs must match all that are set."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.agent) || has(self.role) || has(self.taskFamily)",
                "set at least one of agent, role or taskFamily",
            ),
        )
    )

    agent: str | None = Field(
        default=None, max_length=63, pattern=DNS_LABEL, description="Agent name as it reports to the gateway."
    )
    role: str | None = Field(
        default=None, max_length=63, pattern=DNS_LABEL, description="Agent role, e.g. coder, fixer or judge."
    )
    task_family: str | None = Field(
        default=None, max_length=63, pattern=DNS_LABEL, description="Task family, e.g. sql-migrations."
    )


class RewardGapSource(KaizenModel):
    """Pairs from attempts at the same task whose rewards differ enough."""

    enabled: bool = Field(default=True, description="Mine pairs from reward gaps.")
    min_margin: float = Field(
        default=0.2, gt=0.0, le=1.0, description="Smallest reward difference that makes a pair."
    )


class PairSources(KaizenModel):
    """Which kinds of evidence become preference pairs."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.humanCorrections || self.rewardGaps.enabled || self.errorRecoveries"
                " || self.explicit || self.llmJudge.enabled",
                "enable at least one pair source",
            ),
        )
    )

    human_corrections: bool = Field(
        default=True, description="A person's correction is chosen over the original."
    )
    reward_gaps: RewardGapSource = section(RewardGapSource, "Pairs from reward differences between attempts.")
    error_recoveries: bool = Field(
        default=True, description="A successful fix is chosen over the failed attempt before it."
    )
    explicit: bool = Field(default=True, description="Pairs that agents post directly.")
    llm_judge: JudgeSettings = section(JudgeSettings, "Pairs from an LLM judge's verdicts.")


class GpuBudget(KaizenModel):
    """A ceiling on training spend per rolling window."""

    gpu_hours: float = Field(
        default=8.0, ge=0.0, le=100_000.0, description="GPU-hours allowed per window; 0 stops training."
    )
    window: Duration = Field(default="24h", description="Length of the rolling window.")


class TriggerSettings(KaizenModel):
    """When a new TrainingRun starts. Any trigger fires one; cooldown and budget can hold it back."""

    min_new_pairs: int = Field(
        default=200,
        ge=1,
        le=10_000_000,
        description="Start when this many approved pairs arrived since the last run.",
    )
    schedule: str | None = Field(
        default=None,
        max_length=64,
        pattern=CRON,
        description="Cron schedule (five fields, UTC) that also starts a run when new pairs exist; unset disables it.",
    )
    cooldown: Duration = Field(default="1h", description="Least time between two runs of this policy.")
    budget: GpuBudget = section(GpuBudget, "GPU-hour budget per window.")


class LearningPolicySpec(KaizenModel):
    """Desired behaviour of one learning track."""

    track: Track = Field(description="Which agents, roles or task families this policy learns for.")
    reward: RewardWeights = section(RewardWeights, "How a run's reward is computed.")
    pair_sources: PairSources = section(PairSources, "Which evidence becomes preference pairs.")
    data: DataSettings = section(DataSettings, "Which experience may become training data.")
    trigger: TriggerSettings = section(TriggerSettings, "When to train.")
    training: TrainingSettings = Field(description="What to train and how.")
    gate: OfflineGate = section(OfflineGate, "What an adapter must reach offline before it faces traffic.")
    serving: ServingSettings = section(ServingSettings, "How shadow models are served.")
    rollout: RolloutSettings = section(RolloutSettings, "How challengers earn traffic and are judged.")
    history: HistoryLimits = section(
        HistoryLimits,
        "How many finished TrainingRuns, settled Experiments and retired ShadowModels are kept.",
    )
    review: ReviewSettings = section(ReviewSettings, "How people review this track's pairs.")
    paused: bool = Field(default=False, description="Stop starting new TrainingRuns; running work continues.")


class DataHealth(KaizenModel):
    """What the store holds for this track."""

    runs: int = Field(default=0, ge=0, description="Runs recorded.")
    approved_pairs: int = Field(default=0, ge=0, description="Trainable pairs in total.")
    new_approved_pairs: int = Field(
        default=0, ge=0, description="Trainable pairs since the last TrainingRun's watermark."
    )
    pending_review: int = Field(default=0, ge=0, description="Pairs waiting in the review queue.")
    pairs_by_source: dict[str, int] = Field(
        default_factory=dict,
        description="Pairs per source (humanCorrection, rewardGap, errorRecovery, explicit, llmJudge).",
        json_schema_extra={"maxProperties": 8},
    )
    scrubbed_values: int = Field(
        default=0, ge=0, description="PII and secret values removed by the last export."
    )
    observed_at: datetime | None = Field(default=None, description="When these counts last changed.")


class ChampionStatus(KaizenModel):
    """The ShadowModel serving this track now."""

    shadow_model: ObjectName = Field(description="Name of the champion ShadowModel.")
    since: datetime = Field(description="When it became champion.")


class LineageEntry(KaizenModel):
    """One past or present champion."""

    shadow_model: ObjectName = Field(description="The ShadowModel.")
    training_run: str = Field(default="", max_length=253, description="The TrainingRun that produced it.")
    promoted_at: datetime = Field(description="When it became champion.")
    retired_at: datetime | None = Field(default=None, description="When it stopped being champion.")
    reason: str = Field(default="", max_length=1024, description="Why it was retired or rolled back.")


class BudgetStatus(KaizenModel):
    """Training spend in the current window."""

    gpu_hours_used: float = Field(default=0.0, ge=0.0, description="GPU-hours used in the window.")
    window_start: datetime | None = Field(
        default=None,
        description="Start of the current window, to the hour (the budget counts the exact window).",
    )


class LearningPolicyStatus(KaizenModel):
    """Observed state of the track."""

    observed_generation: int = observed_generation_field()
    conditions: list[Condition] = conditions_field()
    interventions: list[Intervention] = interventions_field()
    data: DataHealth | None = Field(default=None, description="What the store holds for this track.")
    champion: ChampionStatus | None = Field(default=None, description="The current champion.")
    last_training_run: str = Field(default="", max_length=253, description="Name of the latest TrainingRun.")
    last_training_time: datetime | None = Field(
        default=None, description="When the latest TrainingRun was created."
    )
    next_eligible_time: datetime | None = Field(
        default=None, description="Earliest time cooldown and budget allow a run."
    )
    budget: BudgetStatus | None = Field(default=None, description="Training spend in the current window.")
    lineage: list[LineageEntry] = Field(
        default_factory=list,
        max_length=32,
        description="Champions, newest first (bounded; older ones drop off).",
    )


class LearningPolicy(KaizenModel):
    spec: LearningPolicySpec
    status: LearningPolicyStatus | None = None


def at_rest(raw: dict[str, Any]) -> bool:
    """Never: a policy keeps counting its data and watching its triggers."""
    return False


INFO = KindInfo(
    model=LearningPolicy,
    plural="learningpolicies",
    short_names=("lp", "lpol"),
    status_model=LearningPolicyStatus,
    columns=(
        READY_COLUMN,
        REASON_COLUMN,
        PrinterColumn("Champion", "string", ".status.champion.shadowModel"),
        PrinterColumn("New Pairs", "integer", ".status.data.newApprovedPairs"),
        PrinterColumn("Last Run", "string", ".status.lastTrainingRun"),
        PrinterColumn("Method", "string", ".spec.training.method", wide_only=True),
        PrinterColumn("Base Model", "string", ".spec.training.baseModel.name", wide_only=True),
    ),
    at_rest=at_rest,
)
