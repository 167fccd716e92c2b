"""The bandit strategy's plan: Thompson weights on every reconcile, one decisive look at the deadline.

A bandit optimises while it learns, so it has no step schedule and no early stop: every reconcile
recomputes the weights (``bandit.thompson_weights``, seeded from the observations, so a repeated
reconcile writes the same weights). Deciding "this variant is best" from a posterior probability at
every look would inflate errors the way peeking does, so the bandit decides once, at ``maxDuration``:

* the leader is clearly best — every variant has its minimum rewards, P(leader is best) >= 1 - alpha,
  and its guardrails pass against the champion — → Promote it (all traffic to it), or, if the leader
  is the champion itself, RollBack the challengers; without ``autoPromote`` it waits as Continue with
  condition AwaitingApproval, keeping the bandit's weights;
* otherwise Inconclusive, naming the leader: traffic back to the champion, or, for a bandit without
  one (model routing), the last weights frozen — there is no safe default to return to.

A sample-ratio mismatch freezes the weights (the check is per allocation epoch, so the bandit's moving
weights are tested exactly; see ``srm``).
"""

from __future__ import annotations

from controllers.api.experiment import Decision, SampleRatioCheck
from controllers.decisions.experiments.bandit import BanditWeights, observation_seed, thompson_weights
from controllers.decisions.experiments.evidence import Evidence, ExperimentPlan
from controllers.decisions.experiments.guardrails import GuardrailState


def equal_weights(names: list[str]) -> dict[str, int]:
    share, left = divmod(100, len(names))
    return {name: share + (1 if index < left else 0) for index, name in enumerate(names)}


def plan_bandit(evidence: Evidence) -> ExperimentPlan:
    spec = evidence.spec
    names = list(evidence.observations)
    ratio = evidence.ratio
    srm = SampleRatioCheck(ok=ratio.ok, p_value=ratio.p_value)
    current = evidence.status_weights() or equal_weights(names)
    ordered = list(evidence.observations.values())
    bandit = thompson_weights(
        ordered,
        exploration_floor=spec.bandit.exploration_floor,
        seed=observation_seed(ordered),
        costs={variant.name: variant.cost_per_request for variant in spec.variants},
        max_cost_per_request=spec.bandit.max_cost_per_request,
    )
    short = evidence.short_of_samples()
    if not ratio.ok:
        reason = f"sample ratio mismatch {ratio.sentence()}: weights frozen until assignment is fixed"
        if evidence.deadline_passed:
            return _inconclusive(evidence, bandit, current, srm, reason)
        return evidence.plan(Decision.CONTINUE, reason, "SampleRatioMismatch", current, sample_ratio=srm)
    if evidence.deadline_passed:
        return _decide(evidence, bandit, current, srm, short)
    shown = ", ".join(f"{name} {weight}%" for name, weight in bandit.weights.items())
    reason = f"Thompson sampling: {_leader(evidence, bandit)}; weights {shown}"
    if spec.bandit.max_cost_per_request > 0:
        cost = bandit.expected_cost or 0.0
        verdict = (
            "within" if bandit.within_budget else "over (every variant at its floor or as cheap as it gets)"
        )
        reason += f"; cost {cost:.4g}/request {verdict} the budget {spec.bandit.max_cost_per_request:g}"
    if short:
        reason = f"waiting for traffic ({', '.join(short)} rewards); {reason}"
    condition = "WaitingForTraffic" if short else "Evaluating"
    return evidence.plan(
        Decision.CONTINUE, reason, condition, bandit.weights, sample_ratio=srm, waiting=bool(short)
    )


def _leader(evidence: Evidence, bandit: BanditWeights) -> str:
    leader = bandit.leader
    obs = evidence.observations[leader]
    mean = f"mean reward {obs.mean_reward:.3f}" if obs.mean_reward is not None else "no rewards yet"
    return (
        f"{leader} leads (P(best)={bandit.probability_best[leader]:.2f}, {mean} over {obs.rewards} rewards)"
    )


def _decide(
    evidence: Evidence,
    bandit: BanditWeights,
    current: dict[str, int],
    srm: SampleRatioCheck,
    short: list[str],
) -> ExperimentPlan:
    rollout, leader, champion = evidence.spec.rollout, bandit.leader, evidence.champion
    clear = not short and bandit.probability_best[leader] >= 1 - rollout.alpha
    guarded = (
        champion is None
        or leader == champion
        or all(
            verdict.state in (GuardrailState.PASS, GuardrailState.UNKNOWN)
            for verdict in evidence.guardrails(leader)
        )
    )
    if not (clear and guarded):
        why = "no variant is clearly best" if not clear else f"{leader} fails a guardrail"
        return _inconclusive(evidence, bandit, current, srm, f"{_leader(evidence, bandit)}; {why}")
    everything = {name: 100 if name == leader else 0 for name in evidence.observations}
    if not rollout.auto_promote:
        reason = f"{_leader(evidence, bandit)}: clearly best, awaiting approval (`kaizen approve experiment`, or spec.rollout.autoPromote: true)"
        return evidence.plan(Decision.CONTINUE, reason, "AwaitingApproval", bandit.weights, sample_ratio=srm)
    if leader == champion:
        reason = f"{_leader(evidence, bandit)}: the champion is clearly best, challengers rolled back"
        return evidence.plan(Decision.ROLL_BACK, reason, "RolledBack", everything, sample_ratio=srm)
    reason = f"{_leader(evidence, bandit)}: clearly best, promoted"
    return evidence.plan(Decision.PROMOTE, reason, "Promoted", everything, sample_ratio=srm)


def _inconclusive(
    evidence: Evidence, bandit: BanditWeights, current: dict[str, int], srm: SampleRatioCheck, said: str
) -> ExperimentPlan:
    champion = evidence.champion
    if champion is None:
        weights, where = current, "weights frozen (no champion to return to)"
    else:
        weights, where = (
            {name: 100 if name == champion else 0 for name in evidence.observations},
            f"traffic back to {champion}",
        )
    reason = (
        f"{said}; no decision within maxDuration {evidence.spec.rollout.max_duration}: inconclusive, {where}"
    )
    return evidence.plan(Decision.INCONCLUSIVE, reason, "Inconclusive", weights, sample_ratio=srm)
