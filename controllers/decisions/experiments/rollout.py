"""The experiment planner: spec + last status + observations + now → weights, decision and reason.

The operator calls ``plan`` on every reconcile and writes what it returns. Nothing here does I/O or
reads the clock, so the same inputs always give the same plan (the bandit's Monte Carlo is seeded
from the observations). Precedence, each able to end the plan:

1. a final decision (Promote, RollBack, Inconclusive) already in the status is sticky: same
   decision, reason, step, weights and figures, exactly as decided (the Event, the status and the
   report then show one set of numbers);
2. ``paused``: weights held, no decision (Continue, condition Paused);
3. the strategy's own plan — A/B below, bandit in ``bandit_plan``.

A/B, in order: a sample-ratio mismatch holds everything (only the deadline still ends the
experiment, so broken assignment cannot keep one running forever); a guardrail breach rolls back;
then the reward rule of ``decision_rule`` (wait for traffic, roll back, promote at the last step,
stop as futile, advance a step) with guardrail vetoes holding back promotion and advancement. Without
``autoPromote`` a proven winner waits at the last step as Continue with condition AwaitingApproval —
never a non-final Promote the operator might act on; a person approves with ``kaizen approve
experiment`` (a one-off request, controllers.decisions.experiments.interventions) or by setting
``spec.rollout.autoPromote: true``, and the next reconcile promotes. Past ``maxDuration`` anything
else is Inconclusive with the traffic back on the champion.

After a promotion the operator keeps watching the new champion against its own earlier window with
``check_drift`` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controllers.api.experiment import (
    Decision,
    ExperimentSpec,
    ExperimentStatus,
    SampleRatioCheck,
    Strategy,
)
from controllers.decisions.experiments.bandit_plan import equal_weights, plan_bandit
from controllers.decisions.experiments.decision_rule import Rule, Verdict, verdict
from controllers.decisions.experiments.drift import DriftVerdict, check_drift
from controllers.decisions.experiments.evidence import FINAL_DECISIONS, Evidence, ExperimentPlan
from controllers.decisions.experiments.guardrails import GuardrailState, in_state
from controllers.decisions.experiments.observations import Traffic

__all__ = ["DriftVerdict", "ExperimentPlan", "check_drift", "plan"]

CONDITION = {
    Decision.PROMOTE: "Promoted",
    Decision.ROLL_BACK: "RolledBack",
    Decision.INCONCLUSIVE: "Inconclusive",
}


def plan(
    spec: ExperimentSpec,
    status: ExperimentStatus | None,
    traffic: Traffic,
    now: datetime,
) -> ExperimentPlan:
    """The next weights and decision for an experiment (see the module docstring for the rules)."""
    evidence = Evidence.gather(spec, status, traffic, now)
    if status is not None and status.decision in FINAL_DECISIONS:
        weights = evidence.status_weights() or _final_weights(evidence, status.decision)
        return evidence.plan(
            status.decision,
            status.decision_reason,
            CONDITION[status.decision],
            weights,
            step=status.step,
            sample_ratio=status.sample_ratio,
            frozen=status.variants,
        )
    step = status.step if status else 0
    if spec.paused:
        weights = evidence.status_weights() or _initial_weights(evidence)
        shown = ", ".join(f"{name} {weight}%" for name, weight in weights.items())
        reason = f"paused: weights held at {shown}; no decision until spec.paused is false"
        return evidence.plan(Decision.CONTINUE, reason, "Paused", weights, step=step)
    if spec.strategy == Strategy.BANDIT:
        return plan_bandit(evidence)
    return _plan_ab(evidence, step)


def _arms(evidence: Evidence) -> tuple[str, str]:
    champion = evidence.champion
    challengers = [name for name in evidence.observations if name != champion]
    if champion is None or len(challengers) != 1:
        raise ValueError("spec.variants: an ABTest needs exactly two variants, one with role Champion")
    return challengers[0], champion


def _initial_weights(evidence: Evidence) -> dict[str, int]:
    if evidence.spec.strategy == Strategy.BANDIT:
        return equal_weights(list(evidence.observations))
    challenger, champion = _arms(evidence)
    first = evidence.spec.rollout.steps[0]
    return {challenger: first, champion: 100 - first}


def _final_weights(evidence: Evidence, decision: Decision) -> dict[str, int]:
    champion = evidence.champion or next(iter(evidence.observations))
    if decision == Decision.PROMOTE and evidence.spec.strategy == Strategy.AB_TEST:
        champion = _arms(evidence)[0]
    return {name: 100 if name == champion else 0 for name in evidence.observations}


@dataclass(frozen=True)
class _Stage:
    """An A/B experiment at its current step: its arms, the weights there, and the two ways to answer."""

    evidence: Evidence
    challenger: str
    champion: str
    step: int
    sample_ratio: SampleRatioCheck

    @property
    def share(self) -> int:
        """The challenger's share of traffic at this step (percent)."""
        return self.evidence.spec.rollout.steps[self.step]

    @property
    def deadline(self) -> str:
        return (
            f"no decision within maxDuration {self.evidence.spec.rollout.max_duration}: inconclusive,"
            f" traffic back to {self.champion}"
        )

    def weights(self, share: int) -> dict[str, int]:
        return {self.challenger: share, self.champion: 100 - share}

    def done(self, decision: Decision, reason: str, challenger_share: int = 0) -> ExperimentPlan:
        """A final decision; traffic goes all to the champion unless the challenger was promoted."""
        return self.evidence.plan(
            decision,
            reason,
            CONDITION[decision],
            self.weights(challenger_share),
            step=self.step,
            sample_ratio=self.sample_ratio,
        )

    def hold(self, reason: str, condition: str = "Evaluating", waiting: bool = False) -> ExperimentPlan:
        """Continue at this step's weights."""
        return self.evidence.plan(
            Decision.CONTINUE,
            reason,
            condition,
            self.weights(self.share),
            step=self.step,
            sample_ratio=self.sample_ratio,
            waiting=waiting,
        )

    def advance(self, reason: str) -> ExperimentPlan:
        """Continue at the next step's weights."""
        share = self.evidence.spec.rollout.steps[self.step + 1]
        return self.evidence.plan(
            Decision.CONTINUE,
            reason,
            "Evaluating",
            self.weights(share),
            step=self.step + 1,
            sample_ratio=self.sample_ratio,
        )


def _plan_ab(evidence: Evidence, step: int) -> ExperimentPlan:
    """Sample ratio first, then guardrail breaches, then the reward rule (module docstring)."""
    challenger, champion = _arms(evidence)
    step = min(step, len(evidence.spec.rollout.steps) - 1)
    ratio = evidence.ratio
    stage = _Stage(evidence, challenger, champion, step, SampleRatioCheck(ok=ratio.ok, p_value=ratio.p_value))
    if not ratio.ok:
        return _plan_mismatch(stage)
    guardrails = evidence.guardrails(challenger)
    breaches = in_state(guardrails, GuardrailState.BREACH)
    if breaches:
        said = "; ".join(b.sentence for b in breaches)
        return stage.done(Decision.ROLL_BACK, f"guardrail breached: {said}: rolled back")
    vetoes = "; ".join(v.sentence for v in in_state(guardrails, GuardrailState.VETO))
    return _plan_by_reward(stage, _reward_verdict(stage), vetoes)


def _plan_mismatch(stage: _Stage) -> ExperimentPlan:
    """Broken assignment: hold everything, or give up once the deadline has passed."""
    mismatch = (
        f"sample ratio mismatch {stage.evidence.ratio.sentence()}; no decision until assignment is fixed"
    )
    if stage.evidence.deadline_passed:
        return stage.done(Decision.INCONCLUSIVE, f"{mismatch}; {stage.deadline}")
    return stage.hold(mismatch, "SampleRatioMismatch")


def _reward_verdict(stage: _Stage) -> Verdict:
    """``decision_rule``'s verdict on the challenger's sequential test against the champion, at this step."""
    test = stage.evidence.tests[stage.challenger]
    found = verdict(
        test.challenger_rewards,
        test.champion_rewards,
        test.lower,
        test.upper,
        stage.step,
        Rule.from_settings(stage.evidence.spec.rollout),
    )
    return Verdict(int(found))


def _plan_by_reward(stage: _Stage, found: Verdict, vetoes: str) -> ExperimentPlan:
    """The reward rule's verdict as a plan; a guardrail veto holds back promotion and advancement."""
    evidence, rollout, champion = stage.evidence, stage.evidence.spec.rollout, stage.champion
    described = evidence.describe(stage.challenger)
    if found == Verdict.WAIT:
        short = ", ".join(evidence.short_of_samples())
        if evidence.deadline_passed:
            return stage.done(Decision.INCONCLUSIVE, f"not enough traffic: {short} rewards; {stage.deadline}")
        return stage.hold(f"waiting for traffic: {short} rewards so far", "WaitingForTraffic", waiting=True)
    rule = Rule.from_settings(rollout)
    worse = (
        "worse than"
        if not rule.non_inferiority
        else f"worse by more than {rollout.regression_tolerance:g} than"
    )
    better = (
        "better than"
        if not rule.non_inferiority
        else f"not worse by more than {rollout.regression_tolerance:g} than"
    )
    if found == Verdict.ROLL_BACK:
        return stage.done(Decision.ROLL_BACK, f"{described}: {worse} {champion}, rolled back")
    if found == Verdict.FUTILE:
        return stage.done(
            Decision.INCONCLUSIVE,
            f"{described}: cannot be better than {champion} by the minimum detectable effect"
            f" {rollout.min_detectable_effect:g}; stopped early, traffic back to {champion}",
        )
    if found == Verdict.PROMOTE and not vetoes:
        if rollout.auto_promote:
            return stage.done(Decision.PROMOTE, f"{described}: {better} {champion}, promoted", 100)
        return stage.hold(
            f"{described}: {better} {champion}, awaiting approval (`kaizen approve experiment`, or spec.rollout.autoPromote: true)",
            "AwaitingApproval",
        )
    if evidence.deadline_passed:
        return stage.done(Decision.INCONCLUSIVE, f"{described}; {stage.deadline}")
    tolerance = f"-{rollout.regression_tolerance:g}"
    if found == Verdict.ADVANCE and not vetoes:
        share = rollout.steps[stage.step + 1]
        return stage.advance(f"{described}: no regression beyond {tolerance}, advanced to {share}%")
    if vetoes and found in (Verdict.PROMOTE, Verdict.ADVANCE):
        return stage.hold(f"{described}: held at {stage.share}% by guardrail: {vetoes}")
    if stage.step == len(rollout.steps) - 1:
        return stage.hold(
            f"{described}: evaluating at {stage.share}% (promotes once the CS lies above {rule.better_than:g})"
        )
    needed = (stage.step + 1) * rollout.min_samples_per_variant
    return stage.hold(
        f"{described}: evaluating at {stage.share}% (steps up at {needed} {stage.challenger} rewards"
        f" with the CS lower bound above {tolerance})"
    )
