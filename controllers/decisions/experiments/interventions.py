"""What an Experiment does with a person's request (``controllers.api.intervention``): pure rules.

The reconcile asks ``rule`` once per pending request, with the same inputs the planner gets and the
plan it made. The answer is either a final plan that replaces the planner's (Promote, Abort, and an
Approve of a promotion that waits on a person) or nothing to do beyond the record (Pause, Resume, and
every request that is declined). The outcome is the sentence the status records and the CLI prints;
a declined one starts with "declined" so the CLI can tell a refusal from an answer.

Rules, in order:

* an Experiment already decided declines everything (the decision stands: a new experiment is how a
  decision is revisited);
* Promote ends the experiment with the challenger promoted now, whatever the evidence; the status rows
  keep the figures of that moment, and all the traffic goes to the challenger as a normal promotion;
* Abort ends it with RollBack now: the champion gets all the traffic;
* Approve does what ``autoPromote: true`` would have done on this very evidence, but only while the
  planner waits for a person (condition AwaitingApproval); otherwise it says what the experiment is
  doing instead;
* Pause and Resume only confirm the switch the CLI set (``spec.paused``): the planner already holds the
  weights of a paused experiment and decides again once it is resumed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from controllers.api.experiment import (
    Decision,
    ExperimentSpec,
    ExperimentStatus,
    VariantRole,
)
from controllers.api.intervention import Action, Intervention
from controllers.decisions.experiments.evidence import FINAL_DECISIONS, ExperimentPlan
from controllers.decisions.experiments.observations import Traffic
from controllers.decisions.experiments.rollout import CONDITION, plan

AWAITING_APPROVAL = "AwaitingApproval"  # the planner's condition reason for a winner waiting on a person
DECLINED = "InterventionDeclined"  # the Event reason of a request the operator did not carry out


@dataclass(frozen=True)
class Ruling:
    """What to do with one request: the plan it forces (None: the planner's plan stands) and the
    outcome the status records."""

    request: Intervention
    outcome: str
    honoured: bool
    forced: ExperimentPlan | None = None

    @property
    def event(self) -> tuple[str, str, str]:
        """(type, reason, message): who asked, why, and what was done."""
        request = self.request
        said = f"{request.action.value} asked by {request.by or 'someone'} ({_why(request)})"
        if self.honoured:
            return "Normal", request.action.value, f"{said}: {self.outcome}"
        return "Warning", DECLINED, f"{said}: {self.outcome}"


def rule(
    request: Intervention,
    spec: ExperimentSpec,
    status: ExperimentStatus | None,
    traffic: Traffic,
    now: datetime,
    decided: ExperimentPlan,
) -> Ruling:
    """The answer to ``request``; ``decided`` is the planner's plan for this reconcile."""
    if status is not None and status.decision in FINAL_DECISIONS:
        return settled(request, status)
    action = request.action
    if action in (Action.PROMOTE, Action.ABORT):
        return _end(request, spec, status, decided)
    if action == Action.APPROVE:
        return _approve(request, spec, status, traffic, now, decided)
    if action == Action.PAUSE:
        if not spec.paused:
            return _declined(request, "spec.paused is false (resumed since?): nothing is held")
        return Ruling(request, f"weights held at {_shown(decided.weights)}", honoured=True)
    if action == Action.RESUME:
        if spec.paused:
            return _declined(request, "spec.paused is still true (paused again since?): weights stay held")
        return Ruling(request, f"resumed: {decided.reason}", honoured=True)
    return _declined(request, f"{action.value} does not apply to an Experiment")


def settled(request: Intervention, status: ExperimentStatus) -> Ruling:
    """Any request on a decided experiment: the decision stands."""
    said = f"{status.decision.value}: {status.decision_reason}"
    return _declined(request, f"the experiment is already decided ({said})")


def unroutable(ruling: Ruling, why: str) -> Ruling:
    """A request whose decision cannot be routed now (a model it needs does not serve): declined, so
    that the person hears why and can ask again, instead of a decision that nothing can carry out."""
    return _declined(ruling.request, f"cannot {ruling.request.action.value.lower()} now: {why}")


def _end(
    request: Intervention, spec: ExperimentSpec, status: ExperimentStatus | None, decided: ExperimentPlan
) -> Ruling:
    """Promote or Abort: a final decision now, at the figures of this moment (the planner's rows for
    this very reconcile, with the decision's weights; no second pass over the traffic)."""
    champions = [v.name for v in spec.variants if v.role == VariantRole.CHAMPION]
    challengers = [v.name for v in spec.variants if v.role != VariantRole.CHAMPION]
    if request.action == Action.PROMOTE:
        if len(challengers) != 1:
            return _declined(
                request,
                f"Promote needs one challenger and this experiment has {len(challengers)}"
                f" ({', '.join(challengers)}); abort it or let it decide",
            )
        winner, final, verb = challengers[0], Decision.PROMOTE, "promoted"
    else:
        if not champions:
            return _declined(request, "no champion to give the traffic back to; let the experiment decide")
        winner, final, verb = champions[0], Decision.ROLL_BACK, "aborted"
    weights = {v.name: 100 if v.name == winner else 0 for v in spec.variants}
    forced = dataclasses.replace(
        decided,
        decision=final,
        reason=f"{verb} by {request.by or 'someone'}: {_why(request)}"[:1024],
        final=True,
        step=status.step if status else 0,
        weights=weights,
        variants=[row.model_copy(update={"weight": weights.get(row.name, 0)}) for row in decided.variants],
        waiting_for_traffic=False,
        condition_reason=CONDITION[final],
    )
    done = f"{'promoted' if final == Decision.PROMOTE else 'rolled back'}: all traffic on {winner}"
    return Ruling(request, done, honoured=True, forced=forced)


def _approve(
    request: Intervention,
    spec: ExperimentSpec,
    status: ExperimentStatus | None,
    traffic: Traffic,
    now: datetime,
    decided: ExperimentPlan,
) -> Ruling:
    """What autoPromote would have decided on this evidence, while (and only while) a winner waits."""
    if decided.condition_reason != AWAITING_APPROVAL:
        return _declined(request, f"nothing awaits approval: {decided.reason}")
    rollout = spec.rollout.model_copy(update={"auto_promote": True})
    approved = plan(spec.model_copy(update={"rollout": rollout}), status, traffic, now)
    if not approved.final:  # the same evidence cannot say otherwise; guard the invariant all the same
        return _declined(request, f"nothing awaits approval: {approved.reason}")
    said = f"{approved.reason}; approved by {request.by or 'someone'}: {_why(request)}"
    forced = dataclasses.replace(approved, reason=said[:1024])
    return Ruling(request, f"approved: {approved.decision.value}", honoured=True, forced=forced)


def _declined(request: Intervention, why: str) -> Ruling:
    return Ruling(request, f"declined: {why}"[:300], honoured=False)


def _why(request: Intervention) -> str:
    return request.reason or "no reason given"


def _shown(weights: dict[str, int]) -> str:
    return ", ".join(f"{name} {weight}%" for name, weight in weights.items())
