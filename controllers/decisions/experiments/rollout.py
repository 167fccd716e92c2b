"""The experiment planner: spec + last status + observations + now → weights, decision and reason.

The operator calls ``plan`` on every reconcile and writes what it returns. Nothing here does I/O or
reads the clock, so the same inputs always give the same plan (the bandit's Monte Carlo is seeded
from the observations). Precedence, each able to end the plan:

1. a final decision (Promote, RollBack, Inconclusive) already in the status is sticky: same
   decision, reason, step and weights; only the statistics are refreshed;
2. ``paused``: weights held, no decision (Continue, condition Paused);
3. the strategy's own plan — A/B below, bandit in ``bandit_plan``.

A/B, in order: a sample-ratio mismatch holds everything (only the deadline still ends the
experiment, so broken assignment cannot keep one running forever); a guardrail breach rolls back;
then the reward rule of ``decision_rule`` (wait for traffic, roll back, promote at the last step,
advance a step) with guardrail vetoes holding back promotion and advancement. Without
``autoPromote`` a proven winner waits at the last step as Continue with condition AwaitingApproval —
never a non-final Promote the operator might act on; a person approves by setting
``spec.rollout.autoPromote: true``, and the next reconcile promotes. Past ``maxDuration`` anything
else is Inconclusive with the traffic back on the champion.

After a promotion the operator keeps watching the new champion against its own earlier window with
``check_drift`` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping
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
from controllers.decisions.experiments.observations import VariantObservations
from controllers.decisions.experiments.srm import check_sample_ratio

__all__ = ["DriftVerdict", "ExperimentPlan", "check_drift", "plan"]

CONDITION = {
    Decision.PROMOTE: "Promoted",
    Decision.ROLL_BACK: "RolledBack",
    Decision.INCONCLUSIVE: "Inconclusive",
}


def plan(
    spec: ExperimentSpec,
    status: ExperimentStatus | None,
    observations: Mapping[str, VariantObservations],
    now: datetime,
) -> ExperimentPlan:
    """The next weights and decision for an experiment (see the module docstring for the rules)."""
    evidence = Evidence.gather(spec, status, observations, now)
    if status is not None and status.decision in FINAL_DECISIONS:
        weights = evidence.status_weights() or _final_weights(evidence, status.decision)
        return evidence.plan(
            status.decision,
            status.decision_reason,
            CONDITION[status.decision],
            weights,
            step=status.step,
            sample_ratio=status.sample_ratio,
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


def _plan_ab(evidence: Evidence, step: int) -> ExperimentPlan:
    rollout = evidence.spec.rollout
    challenger, champion = _arms(evidence)
    step = min(step, len(rollout.steps) - 1)
    at = {challenger: rollout.steps[step], champion: 100 - rollout.steps[step]}
    back = {challenger: 0, champion: 100}
    seen = rollout.steps[: step + 1]
    low, high = min(seen) / 100, max(seen) / 100
    ratio = check_sample_ratio(
        {name: evidence.split[name] for name in at}, {challenger: (low, high), champion: (1 - high, 1 - low)}
    )
    srm = SampleRatioCheck(ok=ratio.ok, p_value=ratio.p_value)

    def done(decision: Decision, reason: str, weights: dict[str, int]) -> ExperimentPlan:
        return evidence.plan(decision, reason, CONDITION[decision], weights, step=step, sample_ratio=srm)

    def hold(reason: str, condition: str = "Evaluating", waiting: bool = False) -> ExperimentPlan:
        return evidence.plan(
            Decision.CONTINUE, reason, condition, at, step=step, sample_ratio=srm, waiting=waiting
        )

    deadline = (
        f"no decision within maxDuration {rollout.max_duration}: inconclusive, traffic back to {champion}"
    )
    if not ratio.ok:
        expected = f"{low:.0%}" if low == high else f"{low:.0%} to {high:.0%}"
        mismatch = (
            f"sample ratio mismatch: {challenger} got {ratio.observed[challenger]:.1%} of requests,"
            f" expected {expected} (p={ratio.p_value:.2g}); no decision until assignment is fixed"
        )
        if evidence.deadline_passed:
            return done(Decision.INCONCLUSIVE, f"{mismatch}; {deadline}", back)
        return hold(mismatch, "SampleRatioMismatch")
    guardrails = evidence.guardrails(challenger)
    breaches = in_state(guardrails, GuardrailState.BREACH)
    if breaches:
        said = "; ".join(b.sentence for b in breaches)
        return done(Decision.ROLL_BACK, f"guardrail breached: {said}: rolled back", back)
    test = evidence.tests[challenger]
    obs = evidence.observations
    rule = Rule.from_settings(rollout)
    found = Verdict(
        int(
            verdict(
                obs[challenger].rewards,
                obs[champion].rewards,
                test.lower if test else 0.0,
                test.upper if test else 0.0,
                step,
                rule,
            )
        )
    )
    described = evidence.describe(challenger)
    vetoes = "; ".join(v.sentence for v in in_state(guardrails, GuardrailState.VETO))
    if found == Verdict.WAIT:
        short = ", ".join(evidence.short_of_samples())
        if evidence.deadline_passed:
            return done(Decision.INCONCLUSIVE, f"not enough traffic: {short} rewards; {deadline}", back)
        return hold(f"waiting for traffic: {short} rewards so far", "WaitingForTraffic", waiting=True)
    if found == Verdict.ROLL_BACK:
        return done(Decision.ROLL_BACK, f"{described}: worse than {champion}, rolled back", back)
    if found == Verdict.PROMOTE and not vetoes:
        if rollout.auto_promote:
            return done(
                Decision.PROMOTE,
                f"{described}: better than {champion}, promoted",
                {challenger: 100, champion: 0},
            )
        return hold(
            f"{described}: better than {champion}, awaiting approval (set spec.rollout.autoPromote to true)",
            "AwaitingApproval",
        )
    if evidence.deadline_passed:
        return done(Decision.INCONCLUSIVE, f"{described}; {deadline}", back)
    if found == Verdict.ADVANCE and not vetoes:
        share = rollout.steps[step + 1]
        reason = f"{described}: no regression beyond -{rollout.regression_tolerance:g}, advanced to {share}%"
        weights = {challenger: share, champion: 100 - share}
        return evidence.plan(
            Decision.CONTINUE, reason, "Evaluating", weights, step=step + 1, sample_ratio=srm
        )
    if vetoes and found in (Verdict.PROMOTE, Verdict.ADVANCE):
        return hold(f"{described}: held at {at[challenger]}% by guardrail: {vetoes}")
    if step == len(rollout.steps) - 1:
        return hold(f"{described}: evaluating at {at[challenger]}% (promotes once the CS lies above 0)")
    needed = (step + 1) * rollout.min_samples_per_variant
    return hold(
        f"{described}: evaluating at {at[challenger]}% (steps up at {needed} {challenger} rewards"
        f" with the CS lower bound above -{rollout.regression_tolerance:g})"
    )
