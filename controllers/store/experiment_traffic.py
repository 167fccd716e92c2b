"""What the planner reads of one experiment: its observations, reward stream and allocation epochs.

``observations`` (``controllers.store.experiments``) gives the per-variant sums the guardrails and
the bandit use. The sequential tests need two more views, both keyed by the weights the router
assigned each request by (``experiment_assignments.allocation``, revision 0006):

* the reward stream: rewarded, unpinned requests in the order their rewards were recorded (a run's,
  or while no run names the request, that of feedback on the request alone: ``experiments.REWARD``),
  each with the variant the hash *assigned* (a fallback counts for the challenger that failed) and
  its weights;
* the allocation epochs: per set of weights, the units first seen under it, per assigned variant.

Rows written before revision 0006 have no weights and are left out of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controllers.api.routes import parse_allocation
from controllers.decisions.experiments.observations import AllocationEpoch, RewardStream, Traffic
from controllers.store.experiments import REWARD, REWARDED_AT, SAME_REQUEST, observations
from controllers.store.models import Assignment, Run


def traffic(session: Session, experiment: str, success_threshold: float = 0.5) -> Traffic:
    """Everything the planner reads for ``experiment``: per-variant observations, the reward stream
    and the allocation epochs (see ``reward_stream`` and ``allocation_epochs``)."""
    return Traffic(
        variants=observations(session, experiment, success_threshold),
        rewards=reward_stream(session, experiment),
        epochs=allocation_epochs(session, experiment),
    )


def reward_stream(session: Session, experiment: str) -> RewardStream:
    """Rewarded, unpinned requests with the variant the hash *assigned* and the weights it assigned
    by, in the order their rewards were recorded (``runs.changed_at``, then the run id; for a request
    only feedback rated, when it did): the order in which a sequential test could have seen them.
    Rows from before revision 0006 (no weights) and rows whose weights do not parse are left out."""
    rows: Sequence[Any] = session.execute(
        select(Assignment.variant, Assignment.allocation, REWARD)
        .outerjoin(Run, SAME_REQUEST)
        .where(
            Assignment.experiment == experiment,
            Assignment.pinned.is_(False),
            Assignment.allocation.is_not(None),
            REWARD.is_not(None),
        )
        .order_by(REWARDED_AT, func.coalesce(Run.id, ""), Assignment.request_id)
    ).all()
    parsed: dict[str, dict[str, int] | None] = {}
    kept = []
    for variant, allocation, reward in rows:
        if allocation not in parsed:
            parsed[allocation] = parse_allocation(allocation)
        weights = parsed[allocation]
        if weights is not None and variant in weights:
            kept.append((variant, weights, float(reward)))
    return RewardStream.from_rows(kept)


def allocation_epochs(session: Session, experiment: str) -> tuple[AllocationEpoch, ...]:
    """New units per variant under each set of weights, in the order the epochs began.

    A unit counts once, in the epoch of its first unpinned request (``AllocationEpoch``)."""
    first = (
        select(
            Assignment.allocation.label("allocation"),
            Assignment.variant.label("variant"),
            Assignment.created_at.label("created_at"),
            func.row_number()
            .over(
                partition_by=Assignment.unit_hash,
                order_by=(Assignment.created_at, Assignment.request_id),
            )
            .label("visit"),
        )
        .where(Assignment.experiment == experiment, Assignment.pinned.is_(False))
        .subquery()
    )
    rows: Sequence[Any] = session.execute(
        select(first.c.allocation, first.c.variant, func.count(), func.min(first.c.created_at))
        .where(first.c.visit == 1, first.c.allocation.is_not(None))
        .group_by(first.c.allocation, first.c.variant)
    ).all()
    epochs: dict[str, tuple[datetime, dict[str, int]]] = {}
    for allocation, variant, count, began in rows:
        began_at, units = epochs.setdefault(allocation, (began, {}))
        units[variant] = int(count)
        epochs[allocation] = (min(began_at, began), units)
    found = []
    for allocation, (_, units) in sorted(epochs.items(), key=lambda item: item[1][0]):
        weights = parse_allocation(allocation)
        if weights is not None:
            found.append(AllocationEpoch(weights=weights, units=units))
    return tuple(found)
