"""What the planner knows on one reconcile, gathered once: observations per variant, tests, sentences.

``rollout.plan`` and ``bandit_plan.plan_bandit`` both need the same facts — the observations in spec
order, the champion, the hashed split, each challenger's test against the champion with its running
p-value, and the per-variant status rows — and the same way of saying them in a reason. Keeping that
here leaves the two planners with nothing but their rules.
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
from controllers.decisions.experiments.guardrails import GuardrailVerdict, check_guardrails
from controllers.decisions.experiments.msprt import Comparison, always_valid, compare_means, mixture_variance
from controllers.decisions.experiments.observations import VariantObservations
from controllers.decisions.experiments.srm import hashed_split

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
    tau2: float
    split: dict[str, int]
    tests: dict[str, Comparison | None]  # challenger name → test against the champion
    running_p: dict[str, float | None]

    @classmethod
    def gather(
        cls,
        spec: ExperimentSpec,
        status: ExperimentStatus | None,
        observations: Mapping[str, VariantObservations],
        now: datetime,
    ) -> Evidence:
        seen = {v.name: observations.get(v.name) or VariantObservations(name=v.name) for v in spec.variants}
        champion = next((v.name for v in spec.variants if v.role == VariantRole.CHAMPION), None)
        tau2 = mixture_variance(spec.rollout.min_detectable_effect)
        previous = {row.name: row.p_value for row in (status.variants if status else [])}
        tests: dict[str, Comparison | None] = {}
        running: dict[str, float | None] = {}
        for name, obs in seen.items():
            if champion is None or name == champion:
                continue
            test = compare_means(obs, seen[champion], alpha=spec.rollout.alpha, tau2=tau2)
            tests[name] = test
            running[name] = always_valid(previous.get(name), test.p_value) if test else previous.get(name)
        started = status.started_at if status and status.started_at else None
        if started is None and any(obs.assigned for obs in seen.values()):
            started = now
        return cls(
            spec, status, seen, champion, now, started, tau2, hashed_split(seen, champion), tests, running
        )

    @property
    def deadline_passed(self) -> bool:
        limit = parse_duration(self.spec.rollout.max_duration)
        return self.started_at is not None and self.now - self.started_at >= limit

    def short_of_samples(self) -> list[str]:
        """'name n/m' for every variant while any is below the minimum number of rewards, else []."""
        need = self.spec.rollout.min_samples_per_variant
        if all(obs.rewards >= need for obs in self.observations.values()):
            return []
        return [f"{name} {obs.rewards}/{need}" for name, obs in self.observations.items()]

    def guardrails(self, challenger: str) -> list[GuardrailVerdict]:
        assert self.champion is not None
        return check_guardrails(
            self.observations[challenger],
            self.observations[self.champion],
            self.spec.rollout,
            challenger_requests=self.split[challenger],
            champion_requests=self.split[self.champion],
            tau2=self.tau2,
        )

    def describe(self, challenger: str) -> str:
        """'b reward 0.412 vs a 0.521 (difference -0.109, 95% CS [-0.160, -0.058], p=0.0004) after 412/405 samples'."""
        assert self.champion is not None
        obs, base, test = (
            self.observations[challenger],
            self.observations[self.champion],
            self.tests[challenger],
        )
        if test is None:
            return f"{challenger} has {obs.rewards} rewards, {self.champion} {base.rewards}"
        level = f"{100 * (1 - self.spec.rollout.alpha):g}%"
        return (
            f"{challenger} reward {obs.mean_reward:.3f} vs {self.champion} {base.mean_reward:.3f}"
            f" (difference {test.estimate:+.3f}, {level} CS [{test.lower:+.3f}, {test.upper:+.3f}],"
            f" p={_p(self.running_p[challenger])}) after {obs.rewards}/{base.rewards} samples"
        )

    def variant_rows(self, weights: Mapping[str, int]) -> list[VariantStatus]:
        rows = []
        for name, obs in self.observations.items():
            test = self.tests.get(name)
            requests = self.split[name]
            rows.append(
                VariantStatus(
                    name=name,
                    weight=weights.get(name, 0),
                    samples=obs.rewards,
                    mean_reward=obs.mean_reward,
                    confidence_lower=test.lower if test else None,
                    confidence_upper=test.upper if test else None,
                    p_value=self.running_p.get(name),
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
    ) -> ExperimentPlan:
        return ExperimentPlan(
            decision=decision,
            reason=reason[:1024],
            final=decision in FINAL_DECISIONS,
            step=step,
            weights=weights,
            variants=self.variant_rows(weights),
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
