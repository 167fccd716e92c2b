"""Feedback that names only a router request: who may write it, where it goes, how a later run takes it.

The router records each request an experiment counts (``Assignment``, keyed by namespace and request
id). Feedback may name such a request by its request id alone: before any run names it, or when none
ever will. It is stored with its ``request_id`` and no ``run_id``, and its verdict (``human_verdict``:
accept/reject, else thumbs, else a rating of 4+; the last of a batch wins) goes onto the assignment
with the reward that verdict alone gives under the weights of the route's LearningPolicy (a route is
named after its policy; ``compute_reward`` with the human signal only). While no run names the
request, that reward is the request's reward for the experiment (``experiments.REWARD``).

The first run written with that request id takes the request's feedback over (``take_over``): the
feedback rows get its ``run_id`` (a correction becomes minable, the run's history complete) and,
unless the run reports a human verdict of its own (the later word), the request's verdict becomes
the run's and its reward is recomputed with it, as when feedback rates a run. From then on the run's
reward is the request's, so a request counts once.

Who may write it: an assignment names no agent, so feedback on a request no run names needs
``routes/use`` on the route that served it, besides ``feedback/create`` in the namespace. ``targets``
reads what a batch would touch, for the gateway to authorize; the write reads it again under a lock
on the assignments (``routes_of``), which a run naming the request waits for too, and refuses with
``TargetsChanged`` if a run appeared in between: feedback never lands on a run of an agent the
caller was not authorized for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controllers.data.reward import RewardWeights, Signals, compute_reward, human_verdict
from controllers.store.models import Assignment, Feedback, Policy, Run


@dataclass(frozen=True)
class Targets:
    """What feedback touches: the agents whose runs it rates, the routes of the requests it rates."""

    agents: frozenset[str] = frozenset()
    routes: frozenset[str] = frozenset()

    def covers(self, agent: str | None, route: str | None) -> bool:
        return (agent is None or agent in self.agents) and (route is None or route in self.routes)


class TargetsChanged(Exception):
    """What the feedback names changed after the caller was authorized (a run now names the request, or
    the run id now exists): nothing is written, and the gateway answers 409."""

    def __init__(self, field: str, value: str) -> None:
        message = (
            f"{field}: a run for {value!r} was written while this feedback was authorized; send it again"
        )
        super().__init__(message)
        self.field = field


def routes_of(
    session: Session, namespace: str, request_ids: Collection[str], *, lock: bool
) -> dict[str, str]:
    """The route of each recorded request of ``namespace`` (requests recorded without one are left
    out), its assignment locked for the transaction when ``lock``, in request id order."""
    if not request_ids:
        return {}
    query = (
        select(Assignment.request_id, Assignment.route)
        .where(Assignment.namespace == namespace, Assignment.request_id.in_(sorted(request_ids)))
        .order_by(Assignment.request_id)
    )
    rows = session.execute(query.with_for_update() if lock else query).all()
    return {str(request_id): str(route) for request_id, route in rows if route}


def first_runs(session: Session, namespace: str, request_ids: Collection[str]) -> dict[str, tuple[str, str]]:
    """(run id, agent) of the first run (by creation, then id) of ``namespace`` naming each request id."""
    if not request_ids:
        return {}
    rows = session.execute(
        select(Run.request_id, Run.id, Run.agent)
        .where(Run.namespace == namespace, Run.request_id.in_(list(request_ids)))
        .order_by(Run.created_at, Run.id)
    ).all()
    found: dict[str, tuple[str, str]] = {}
    for request_id, run_id, agent in rows:
        found.setdefault(str(request_id), (str(run_id), str(agent)))
    return found


def targets(
    session: Session, namespace: str, run_ids: Collection[str], request_ids: Collection[str]
) -> Targets:
    """What feedback naming these ids would touch: the agents of the runs they name (for a request id,
    of every run naming it) and the routes of recorded requests no run names (unknown ids: nothing)."""
    mine = Run.namespace == namespace
    agents: set[str] = set()
    if run_ids:
        agents |= set(session.execute(select(Run.agent).where(mine, Run.id.in_(list(run_ids)))).scalars())
    named: set[str] = set()
    if request_ids:
        query = select(Run.request_id, Run.agent).where(mine, Run.request_id.in_(list(request_ids)))
        for request_id, agent in session.execute(query):
            named.add(str(request_id))
            agents.add(str(agent))
    routes = routes_of(session, namespace, set(request_ids) - named, lock=False)
    return Targets(frozenset(agents), frozenset(routes.values()))


def route_weights(session: Session, namespace: str, route: str) -> RewardWeights:
    """The reward weights of the LearningPolicy a route is named after (the defaults when none is)."""
    policy = session.get(Policy, (namespace, route))
    return RewardWeights.from_camel(policy.weights) if policy is not None else RewardWeights()


def rate_requests(session: Session, namespace: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Put the verdict of feedback rows naming requests alone on their assignments, with its reward."""
    verdicts = {row["request_id"]: v for row in rows if (v := human_verdict(row)) is not None}
    if not verdicts:
        return
    now = datetime.now(UTC)
    assignments = session.execute(
        select(Assignment).where(Assignment.namespace == namespace, Assignment.request_id.in_(list(verdicts)))
    ).scalars()
    weights: dict[str, RewardWeights] = {}
    for assignment in assignments:
        route = assignment.route or ""
        if route not in weights:
            weights[route] = route_weights(session, namespace, route)
        verdict = verdicts[assignment.request_id]
        reward = compute_reward(Signals(human_accepted=verdict), weights[route])
        if (assignment.human_accepted, assignment.reward) != (
            verdict,
            reward,
        ) or assignment.rewarded_at is None:
            assignment.human_accepted, assignment.reward, assignment.rewarded_at = verdict, reward, now


def take_over(session: Session, namespace: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The first run of ``rows`` naming a request takes the feedback that named the request alone; returns
    the runs that took the request's verdict as their own (their rewards are to be recomputed)."""
    firsts: dict[str, str] = {}
    for row in rows:
        if row.get("request_id"):
            firsts.setdefault(row["request_id"], row["id"])
    # The lock first, as a feedback write takes it: feedback on these requests now waits for this run.
    verdicts = dict(
        session.execute(
            select(Assignment.request_id, Assignment.human_accepted)
            .where(Assignment.namespace == namespace, Assignment.request_id.in_(sorted(firsts)))
            .order_by(Assignment.request_id)
            .with_for_update()
        ).all()
    ) if firsts else {}  # fmt: skip
    if not verdicts:
        return []
    mine = Feedback.namespace == namespace
    waiting = select(Feedback.request_id).where(
        mine, Feedback.request_id.in_(list(verdicts)), Feedback.run_id.is_(None)
    )
    pending = {str(request_id) for request_id in session.execute(waiting).scalars()}
    given = []
    for request_id in sorted(pending):
        run_id = firsts[request_id]
        session.execute(
            update(Feedback)
            .where(mine, Feedback.request_id == request_id, Feedback.run_id.is_(None))
            .values(run_id=run_id)
        )
        verdict = verdicts[request_id]
        if verdict is None:
            continue
        own = (Run.namespace == namespace, Run.id == run_id, Run.human_accepted.is_(None))
        result = session.execute(update(Run).where(*own).values(human_accepted=verdict))
        if result.rowcount:  # type: ignore[attr-defined]
            given.append(run_id)
    return given


def reweigh_requests(session: Session, namespace: str, route: str) -> None:
    """After the route's policy changed its weights: the rewards of the requests it served that feedback
    alone rated (a human verdict alone is worth 1 or 0, or nothing when the policy weighs it 0)."""
    weights, now = route_weights(session, namespace, route), datetime.now(UTC)
    for verdict in (True, False):
        reward = compute_reward(Signals(human_accepted=verdict), weights)
        session.execute(
            update(Assignment)
            .where(
                Assignment.namespace == namespace,
                Assignment.route == route,
                Assignment.human_accepted == verdict,
                Assignment.reward.is_distinct_from(reward),
            )
            .values(reward=reward, rewarded_at=now)
        )
