"""The champion's own traffic after a promotion, as two windows for the drift check.

``drift_windows`` reads the rewarded requests one variant of one experiment served after ``since``
(the promotion's ``decidedAt``), in the order they were served. The baseline window is the first
``size`` of them, the recent window the last ``size``; until there are ``2 * size`` the windows are
not formed at all, so they never share a reward. A reward that arrives late belongs to the request
it rates, at the time that request was served, exactly as in ``observations``.

Each window is a ``VariantObservations`` like the experiment's own: the reward sums over its
``size`` rewards, and the traffic counts (requests served, errors and fallbacks of requests assigned
to the variant, cost, p95 latency) over the window's span, from its first rewarded request to its
last. Pinned requests are left out. The rewards are at most ``2 * size`` rows; the counts are SQL
aggregates over one span each, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, select, tuple_
from sqlalchemy.orm import Session

from controllers.decisions.experiments.drift_watch import DriftWindows
from controllers.decisions.experiments.observations import VariantObservations
from controllers.store.experiments import LATENCY_SAMPLE, REWARD, SAME_REQUEST, nearest_rank
from controllers.store.models import Assignment, Run


def drift_windows(
    session: Session,
    experiment: str,
    variant: str,
    since: datetime,
    size: int,
    success_threshold: float = 0.5,
) -> DriftWindows:
    """The baseline and recent windows of ``variant``'s rewards after ``since`` (see the module docstring)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    # SQLite keeps timestamps as text without their zone, so every bound must be in UTC like the rows.
    since = since.astimezone(UTC)
    rewarded = and_(
        Assignment.experiment == experiment,
        Assignment.pinned.is_(False),
        Assignment.served_variant == variant,
        Assignment.created_at > since,
        REWARD.is_not(None),
    )
    joined = select(Assignment.created_at, Assignment.request_id, REWARD).outerjoin(Run, SAME_REQUEST)
    total = int(
        session.execute(
            select(func.count()).select_from(Assignment).outerjoin(Run, SAME_REQUEST)
            .where(rewarded)
        ).scalar_one()
    )  # fmt: skip
    if total < 2 * size:
        return DriftWindows(rewards=total, size=size)
    # Served order, ties broken by request and run, so the two reads agree on one sequence (a request
    # only feedback rated has no run, and no other row of its request to tie with).
    order = (Assignment.created_at, Assignment.request_id, func.coalesce(Run.id, ""))
    first = session.execute(joined.where(rewarded).order_by(*order).limit(size)).all()
    last = session.execute(
        joined.where(rewarded).order_by(*(column.desc() for column in order)).limit(size)
    ).all()
    return DriftWindows(
        rewards=total,
        size=size,
        baseline=_window(session, experiment, variant, first, success_threshold),
        recent=_window(session, experiment, variant, last[::-1], success_threshold),
    )


def _window(
    session: Session, experiment: str, variant: str, rows: Sequence[Any], threshold: float
) -> VariantObservations:
    """One window: reward sums over ``rows`` (in served order), traffic counts over their span."""
    rewards = [float(row[2]) for row in rows]
    # Bounds in (time, request id), the order the rewards were read in, so that requests served in the
    # same instant at a window's edge are split the way the rewards were.
    key = tuple_(Assignment.created_at, Assignment.request_id)
    span = and_(key >= tuple_(rows[0][0], rows[0][1]), key <= tuple_(rows[-1][0], rows[-1][1]))
    counted = and_(Assignment.experiment == experiment, Assignment.pinned.is_(False), span)
    served, assigned = Assignment.served_variant == variant, Assignment.variant == variant
    totals: Sequence[Any] = session.execute(
        select(
            func.sum(case((served, 1), else_=0)),
            func.sum(case((served, func.coalesce(Assignment.cost_tokens, 0)), else_=0)),
            func.sum(case((and_(assigned, Assignment.error.is_(True)), 1), else_=0)),
            func.sum(case((and_(assigned, Assignment.fallback.is_(True)), 1), else_=0)),
        ).where(counted)
    ).one()
    requests, cost, errors, fallbacks = (value or 0 for value in totals)  # SUM over no rows is NULL
    latencies = session.execute(
        select(Assignment.latency_ms)
        .where(counted, served, Assignment.latency_ms.is_not(None))
        .order_by(Assignment.created_at.desc())
        .limit(LATENCY_SAMPLE)
    ).scalars()
    return VariantObservations(
        name=variant,
        assigned=int(requests),
        rewards=len(rewards),
        reward_sum=sum(rewards),
        reward_sum_squares=sum(r * r for r in rewards),
        successes=sum(r >= threshold for r in rewards),
        errors=int(errors),
        fallbacks=int(fallbacks),
        latency_p95_ms=nearest_rank(sorted(float(v) for v in latencies if v is not None), 0.95),
        cost_sum=float(cost),
    )
