"""Experiment: live traffic split between variants, judged by sequential statistics or a bandit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from controllers.api.common import (
    DNS_SUBDOMAIN,
    Condition,
    KaizenModel,
    Name,
    ObjectName,
    cel,
    conditions_field,
    model_name_field,
    observed_generation_field,
    route_endpoint_field,
    section,
)
from controllers.api.intervention import Intervention, interventions_field
from controllers.api.kindinfo import (
    READY_COLUMN,
    REASON_COLUMN,
    KindInfo,
    PrinterColumn,
    condition,
    condition_path,
    status_is_current,
)
from controllers.api.serving_settings import RolloutSettings

KIND = "Experiment"
DECISION_APPLIED = "DecisionApplied"  # condition: the final decision's effects are all in place
DRIFT = "Drift"  # condition: the watch of a promoted champion (controllers.decisions.experiments.drift_watch)


class Strategy(StrEnum):
    AB_TEST = "ABTest"
    BANDIT = "Bandit"


class VariantRole(StrEnum):
    CHAMPION = "Champion"
    CHALLENGER = "Challenger"


class Variant(KaizenModel):
    """One arm of the experiment: a ShadowModel, or any OpenAI-compatible endpoint, optionally with a prompt."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.shadowModel) != has(self.endpoint)",
                "set exactly one of shadowModel or endpoint",
            ),
        )
    )

    name: Name = Field(
        description="Variant name, unique in the experiment; reported in the router's headers."
    )
    role: VariantRole = Field(
        default=VariantRole.CHALLENGER, description="Champion (the baseline) or Challenger."
    )
    shadow_model: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="ShadowModel that serves this variant.",
    )
    endpoint: str | None = route_endpoint_field(
        "OpenAI-compatible base URL, for variants that are not ShadowModels (e.g. a hosted model)."
    )
    model: str | None = model_name_field("Model name sent upstream; unset keeps the client's.")
    prompt_variant: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="Prompt variant id the agent should use (prompt experiments).",
    )
    cost_per_request: float = Field(
        default=0.0, ge=0.0, le=1000.0, description="Expected cost of one request, for the bandit's budget."
    )


class BanditSettings(KaizenModel):
    """Thompson sampling over N variants."""

    exploration_floor: float = Field(
        default=0.05, ge=0.0, le=0.5, description="Every variant keeps at least this share of traffic."
    )
    max_cost_per_request: float = Field(
        default=0.0, ge=0.0, le=1000.0, description="Average cost ceiling across variants; 0 means no budget."
    )


class ExperimentSpec(KaizenModel):
    """Which variants compete, for which traffic, under which rules."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("self.strategy == oldSelf.strategy", "strategy is immutable; create a new Experiment"),
            (
                "self.strategy != 'ABTest' || (size(self.variants) == 2"
                " && self.variants.exists_one(v, v.role == 'Champion'))",
                "an ABTest has exactly two variants, one of them the Champion",
            ),
            (
                "self.strategy != 'Bandit' || self.bandit.explorationFloor * double(size(self.variants)) <= 1.0",
                "bandit.explorationFloor times the number of variants must not exceed 1",
            ),
        )
    )

    policy_ref: ObjectName | None = Field(
        default=None,
        description="The LearningPolicy this experiment serves; unset for a hand-made experiment.",
    )
    strategy: Strategy = Field(
        default=Strategy.AB_TEST,
        description="ABTest: champion vs challenger with sequential statistics. Bandit: Thompson sampling over N.",
    )
    variants: list[Variant] = Field(
        min_length=2,
        max_length=8,
        description="The competing variants.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    rollout: RolloutSettings = section(
        RolloutSettings, "Traffic steps, sample sizes, error rate and guardrails."
    )
    bandit: BanditSettings = section(BanditSettings, "Thompson-sampling settings (strategy Bandit).")
    paused: bool = Field(default=False, description="Freeze weights and decisions; traffic keeps flowing.")


class Decision(StrEnum):
    CONTINUE = "Continue"
    PROMOTE = "Promote"
    ROLL_BACK = "RollBack"
    INCONCLUSIVE = "Inconclusive"


FINAL_DECISIONS = frozenset({Decision.PROMOTE.value, Decision.ROLL_BACK.value, Decision.INCONCLUSIVE.value})


class DriftStage(StrEnum):
    """The drift watch's stages; each value is the reason of the Drift condition that records it."""

    WAITING = "WaitingForTraffic"
    WATCHING = "NoDrift"
    ROLLING_BACK = "RollingBack"
    REGRESSED = "Regressed"
    SUPERSEDED = "Superseded"
    CHAMPION_CHANGED = "ChampionChanged"


# The watch never starts again after these, whatever happens to the route later.
FINAL_DRIFT_STAGES = frozenset({DriftStage.REGRESSED, DriftStage.SUPERSEDED, DriftStage.CHAMPION_CHANGED})


class VariantStatus(KaizenModel):
    """What the experiment has seen of one variant."""

    name: Name = Field(description="The variant.")
    weight: int = Field(default=0, ge=0, le=100, description="Current share of traffic, in percent.")
    samples: int = Field(default=0, ge=0, description="Rewards of requests assigned to this variant.")
    mean_reward: float | None = Field(
        default=None,
        description="Mean reward, each request weighted by 1 / the probability of its assignment.",
    )
    confidence_lower: float | None = Field(
        default=None,
        description="Lower bound of the difference to the champion, valid at every look (level 1 - alpha).",
    )
    confidence_upper: float | None = Field(
        default=None,
        description="Upper bound of the difference to the champion, valid at every look (level 1 - alpha).",
    )
    p_value: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Always-valid p-value against the champion."
    )
    error_rate: float | None = Field(default=None, ge=0.0, le=1.0, description="Share of failed requests.")
    latency_p95_ms: float | None = Field(
        default=None, ge=0.0, description="95th percentile latency in milliseconds."
    )
    cost_per_request: float | None = Field(default=None, ge=0.0, description="Mean cost per request.")


class SampleRatioCheck(KaizenModel):
    """Whether observed traffic matches the configured weights (a mismatch means broken assignment)."""

    ok: bool = Field(default=True, description="False blocks every decision until assignment is fixed.")
    p_value: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Always-valid p-value of the split against each allocation epoch's weights (below 0.001 blocks).",
    )


class ExperimentStatus(KaizenModel):
    """Observed state of the experiment."""

    observed_generation: int = observed_generation_field()
    conditions: list[Condition] = conditions_field()
    interventions: list[Intervention] = interventions_field()
    decision: Decision = Field(
        default=Decision.CONTINUE, description="Continue, Promote, RollBack or Inconclusive."
    )
    decision_reason: str = Field(default="", max_length=1024, description="The decision in a sentence.")
    decided_at: datetime | None = Field(default=None, description="When a final decision was made.")
    step: int = Field(
        default=0, ge=0, le=10, description="Index into rollout.steps of the current challenger weight."
    )
    challenger_weight: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Share of traffic, in percent, the challengers get now (every variant but the champion).",
    )
    started_at: datetime | None = Field(default=None, description="When traffic first flowed.")
    variants: list[VariantStatus] = Field(
        default_factory=list,
        max_length=8,
        description="Per-variant statistics and weights.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    sample_ratio: SampleRatioCheck | None = Field(default=None, description="Sample-ratio-mismatch check.")


class Experiment(KaizenModel):
    spec: ExperimentSpec
    status: ExperimentStatus | None = None


def challenger_weight(spec: ExperimentSpec, rows: list[VariantStatus]) -> int | None:
    """What ``status.challengerWeight`` shows for these status rows (None before any weights)."""
    if not rows:
        return None
    champions = {v.name for v in spec.variants if v.role == VariantRole.CHAMPION}
    return sum(row.weight for row in rows if row.name not in champions)


def at_rest(raw: dict[str, Any]) -> bool:
    """Decided, the decision's effects applied, and (after a promotion) the drift watch over."""
    status = raw.get("status") or {}
    decision = status.get("decision")
    if not status_is_current(raw) or decision not in FINAL_DECISIONS:
        return False
    if condition(raw, DECISION_APPLIED).get("status") != "True":
        return False
    if decision != Decision.PROMOTE.value or raw["spec"].get("strategy") != Strategy.AB_TEST.value:
        return True  # only an A/B promotion is watched for drift afterwards
    return condition(raw, DRIFT).get("reason") in {stage.value for stage in FINAL_DRIFT_STAGES}


INFO = KindInfo(
    model=Experiment,
    plural="experiments",
    short_names=("exp", "kexp"),
    status_model=ExperimentStatus,
    columns=(
        READY_COLUMN,
        PrinterColumn("Decision", "string", ".status.decision"),
        REASON_COLUMN,
        PrinterColumn("Strategy", "string", ".spec.strategy"),
        PrinterColumn("Share", "integer", ".status.challengerWeight"),
        PrinterColumn("Drift", "string", condition_path(DRIFT, "reason")),
        PrinterColumn("Why", "string", ".status.decisionReason", wide_only=True),
    ),
    at_rest=at_rest,
)
