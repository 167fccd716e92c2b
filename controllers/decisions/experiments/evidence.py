"""What the planner knows on one reconcile, gathered once: observations per variant, tests, sentences.

``rollout.plan`` and ``bandit_plan.plan_bandit`` both need the same facts — the observations in spec
order, the champion, the hashed split, each challenger's sequential test against the champion
(narrowed by the sequence the status already holds), the sample-ratio check, and the per-variant
status rows — and the same way of saying them in a reason. Keeping that here leaves the two planners
with nothing but their rules, and gives the reason, the status rows and the Event one set of figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from controllers.api.common import parse_duration
from controllers.api.experiment import (
    Decision,
    ExperimentSpec,
    ExperimentStatus,
    SampleRatioCheck,
    VariantRole,
    VariantStatus,
)
from controllers.decisions.experiments.contrast import Contrast, arm_mean, contrast
from controllers.decisions.experiments.guardrails import GuardrailVerdict, check_guardrails
from controllers.decisions.experiments.observations import Traffic, VariantObservations
from controllers.decisions.experiments.srm import RatioCheck, check_sample_ratio, hashed_split

FINAL_DECISIONS = frozenset({Decision.PROMOTE, Decision.ROLL_BACK, Decision.INCONCLUSIVE})


@dataclass(frozen=True)
class ExperimentPlan:
    """What the operator writes: weights for the router, the decision and the status rows."""

    decision: Decision
    reason: str
    final: bool
    step: int
    weights: dict[str, int]
    variants: list[VariantStatus]
    sample_ratio: SampleRatioCheck
    waiting_for_traffic: bool
    started_at: datetime | None
    condition_reason: str


@dataclass(frozen=True)
class Evidence:
    spec: ExperimentSpec
    status: ExperimentStatus | None
    observations: dict[str, VariantObservations]  # every spec variant, in spec order
    champion: str | None
    now: datetime
    started_at: datetime | None
    split: dict[str, int]
    tests: dict[str, Contrast]  # challenger name → sequential test against the champion
    rewards: dict[str, tuple[int, float | None]]  # variant → (rewards assigned to it, weighted mean)
    ratio: RatioCheck

    @classmethod
    def gather(
        cls,
        spec: ExperimentSpec,
        status: ExperimentStatus | None,
        traffic: Traffic,
        now: datetime,
    ) -> Evidence:
        seen = {
            v.name: traffic.variants.get(v.name) or VariantObservations(name=v.name) for v in spec.variants
        }
        champion = next((v.name for v in spec.variants if v.role == VariantRole.CHAMPION), None)
        previous = {row.name: row for row in (status.variants if status else [])}
        tests: dict[str, Contrast] = {}
        for name in seen:
            if champion is None or name == champion:
                continue
            test = contrast(
                traffic.rewards,
                name,
                champion,
                alpha=spec.rollout.alpha,
                min_detectable_effect=spec.rollout.min_detectable_effect,
            )
            row = previous.get(name)
            if row is not None:
                test = test.narrowed(row.confidence_lower, row.confidence_upper, row.p_value)
            tests[name] = test
        started = status.started_at if status and status.started_at else None
        if started is None and any(obs.assigned for obs in seen.values()):
            started = now
        return cls(
            spec,
            status,
            seen,
            champion,
            now,
            started,
            hashed_split(seen, champion),
            tests,
            {name: arm_mean(traffic.rewards, name) for name in seen},
            check_sample_ratio(traffic.epochs),
        )

    @property
    def deadline_passed(self) -> bool:
        limit = parse_duration(self.spec.rollout.max_duration)
        return self.started_at is not None and self.now - self.started_at >= limit

    def short_of_samples(self) -> list[str]:
        """'name n/m' for every variant while any is below the minimum number of rewards, else []."""
        need = self.spec.rollout.min_samples_per_variant
        if all(count >= need for count, _ in self.rewards.values()):
            return []
        return [f"{name} {count}/{need}" for name, (count, _) in self.rewards.items()]

    def guardrails(self, challenger: str) -> list[GuardrailVerdict]:
        assert self.champion is not None
        return check_guardrails(
            self.observations[challenger],
            self.observations[self.champion],
            self.spec.rollout,
            challenger_requests=self.split[challenger],
            champion_requests=self.split[self.champion],
        )

    def describe(self, challenger: str) -> str:
        """'b reward 0.412 vs a 0.521 (difference -0.109, CS [-0.160, -0.058], p=0.0004) after 412/405 rewards'."""
        assert self.champion is not None
        test = self.tests[challenger]
        if test.estimate is None:
            return (
                f"{challenger} has {test.challenger_rewards} rewards, {self.champion} {test.champion_rewards}"
            )
        return (
            f"{challenger} reward {test.challenger_mean:.3f} vs {self.champion} {test.champion_mean:.3f}"
            f" (difference {test.estimate:+.3f}, {self.level} CS [{test.lower:+.3f}, {test.upper:+.3f}],"
            f" p={_p(test.p_value)}) after {test.challenger_rewards}/{test.champion_rewards} rewards"
        )

    @property
    def level(self) -> str:
        """How sure each bound is: '95%' (one-sided, so a false rollback and a false promotion each)."""
        return f"{100 * (1 - self.spec.rollout.alpha):g}%"

    def variant_rows(self, weights: Mapping[str, int]) -> list[VariantStatus]:
        rows = []
        for name, obs in self.observations.items():
            test = self.tests.get(name)
            requests = self.split[name]
            count, mean = self.rewards[name]
            rows.append(
                VariantStatus(
                    name=name,
                    weight=weights.get(name, 0),
                    samples=count,
                    mean_reward=mean,
                    confidence_lower=test.lower if test else None,
                    confidence_upper=test.upper if test else None,
                    p_value=test.p_value if test else None,
                    error_rate=min(1.0, obs.errors / requests) if requests else None,
                    latency_p95_ms=obs.latency_p95_ms,
                    cost_per_request=obs.cost_per_request,
                )
            )
        return rows

    def plan(
        self,
        decision: Decision,
        reason: str,
        condition: str,
        weights: dict[str, int],
        *,
        step: int = 0,
        sample_ratio: SampleRatioCheck | None = None,
        waiting: bool = False,
        frozen: list[VariantStatus] | None = None,
    ) -> ExperimentPlan:
        """The plan; ``frozen`` keeps the status rows of a settled decision as they were decided."""
        return ExperimentPlan(
            decision=decision,
            reason=reason[:1024],
            final=decision in FINAL_DECISIONS,
            step=step,
            weights=weights,
            variants=list(frozen) if frozen else self.variant_rows(weights),
            sample_ratio=sample_ratio or SampleRatioCheck(),
            waiting_for_traffic=waiting,
            started_at=self.started_at,
            condition_reason=condition,
        )

    def status_weights(self) -> dict[str, int] | None:
        """The weights the status holds, when they name every variant and sum to 100."""
        rows = {row.name: row.weight for row in (self.status.variants if self.status else [])}
        if set(rows) != set(self.observations) or sum(rows.values()) != 100:
            return None
        return {name: rows[name] for name in self.observations}


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2g}" if value < 0.01 else f"{value:.3f}"
