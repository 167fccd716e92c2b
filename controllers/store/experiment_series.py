"""One experiment's data over time, for the report (``kaizen experiment report``): a ``Series``.

The report recomputes the planner's confidence sequence as of many instants, so it needs what the
planner reads, with times: the reward stream of ``controllers.store.experiment_traffic.reward_stream`` (same
rows, same order, same skipping of rows without weights) with the time each reward was recorded
(``runs.changed_at``, the order the stream is in), and the traffic figures of ``observations``
(requests, errors, fallbacks, latency, cost; attributed as there). The rows are read once, in time
order, and cut and accumulated with numpy, so a report over a million requests is one scan.

``until`` ends the series at an instant: a decided experiment's report ends at its decidedAt, and
what was recorded later (a promoted champion's traffic under the same key, late rewards) is left out.
The traffic per interval is the mean, over the interval's requests, of the weights the router
assigned each one with (its ``allocation``; a row from before those were recorded counts for the
variant it was assigned), in percent: the split the router aimed at, without sampling noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from controllers.api.routes import RouteConfig, experiment_key, parse_allocation
from controllers.decisions.experiments.observations import RewardStream, VariantObservations
from controllers.decisions.experiments.report import Series
from controllers.decisions.experiments.sequential import Floats
from controllers.store.experiments import (
    LATENCY_SAMPLE,
    REWARD,
    REWARDED_AT,
    SAME_REQUEST,
    list_routes,
    nearest_rank,
)
from controllers.store.models import Assignment, Run


def find_route(session: Session, namespace: str, name: str) -> RouteConfig | None:
    """The route that carries this Experiment's traffic: its champion and current weights."""
    key = experiment_key(namespace, name)
    return next((config for config, _ in list_routes(session) if config.experiment == key), None)


def experiment_series(
    session: Session, experiment: str, *, buckets: int = 48, until: datetime | None = None
) -> Series | None:
    """``buckets`` evenly spaced snapshots from the first request to ``until`` (default: the last
    request or reward recorded); None when no unpinned request was recorded by then."""
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    counted = and_(Assignment.experiment == experiment, Assignment.pinned.is_(False))
    if until is not None:
        counted = and_(counted, Assignment.created_at <= until)
    requests = session.execute(
        select(
            Assignment.created_at,
            Assignment.variant,
            Assignment.served_variant,
            Assignment.error,
            Assignment.fallback,
            Assignment.latency_ms,
            Assignment.cost_tokens,
            Assignment.allocation,
        )
        .where(counted)
        .order_by(Assignment.created_at, Assignment.request_id)
    ).all()
    if not requests:
        return None
    stream, recorded = timed_reward_stream(session, experiment, until)
    start = requests[0][0]
    end = until or max(
        requests[-1][0], datetime.fromtimestamp(float(recorded.max(initial=0.0)), start.tzinfo)
    )
    edges = [start + (end - start) * (k / buckets) for k in range(1, buckets + 1)] if end > start else [end]
    weights = {text: parse_allocation(text) for text in {row[7] for row in requests}}
    named = {name for found in weights.values() if found for name in found}
    names = sorted({row[1] for row in requests} | {row[2] for row in requests} | set(stream.names) | named)
    return Series(
        start=start,
        edges=tuple(edges),
        stream=stream,
        recorded=recorded,
        traffic=_traffic(requests, names, edges, weights),
        observations={name: _observe(requests, name) for name in names},
    )


def timed_reward_stream(
    session: Session, experiment: str, until: datetime | None = None
) -> tuple[RewardStream, Floats]:
    """``reward_stream`` (rewards recorded up to ``until``) and when each was recorded, POSIX seconds."""
    kept = and_(
        Assignment.experiment == experiment,
        Assignment.pinned.is_(False),
        Assignment.allocation.is_not(None),
        REWARD.is_not(None),
    )
    if until is not None:
        kept = and_(kept, REWARDED_AT <= until)  # noqa: SIM300 (a column expression, not a constant)
    rows: Sequence[Any] = session.execute(
        select(Assignment.variant, Assignment.allocation, REWARD, REWARDED_AT)
        .outerjoin(Run, SAME_REQUEST)
        .where(kept)
        .order_by(REWARDED_AT, func.coalesce(Run.id, ""), Assignment.request_id)
    ).all()
    parsed: dict[str | None, dict[str, int] | None] = {}
    found, times = [], []
    for variant, allocation, reward, changed_at in rows:
        if allocation not in parsed:
            parsed[allocation] = parse_allocation(allocation)
        weights = parsed[allocation]
        if weights is not None and variant in weights and reward is not None:
            found.append((variant, weights, float(reward)))
            times.append(changed_at.timestamp())
    return RewardStream.from_rows(found), np.asarray(times, dtype=np.float64)


def _traffic(
    requests: Sequence[Any],
    names: list[str],
    edges: Sequence[datetime],
    weights: Mapping[str | None, dict[str, int] | None],
) -> tuple[dict[str, float], ...]:
    """Per interval ending at each edge: the mean of its requests' weights, in percent (module
    docstring); all zero for an interval without requests."""
    column = {name: index for index, name in enumerate(names)}
    intended = np.zeros((len(requests), len(names)))
    for row, request in enumerate(requests):
        found = weights.get(request[7])
        total = sum(found.values()) if found else 0
        if found and total > 0:
            for name, weight in found.items():
                intended[row, column[name]] = 100.0 * weight / total
        else:
            intended[row, column[request[1]]] = 100.0
    times = np.array([request[0].timestamp() for request in requests])
    ends = np.searchsorted(times, [edge.timestamp() for edge in edges], side="right")
    starts = np.concatenate([[0], ends[:-1]])
    return tuple(
        {
            name: float(intended[begin:end, index].mean()) if end > begin else 0.0
            for name, index in column.items()
        }
        for begin, end in zip(starts, ends, strict=True)
    )


def _observe(requests: Sequence[Any], name: str) -> VariantObservations:
    """The traffic figures of ``observations`` for one variant (its rewards are in the stream)."""
    served = [row for row in requests if row[2] == name]
    failed = [row for row in requests if row[1] == name]
    latencies = [float(row[5]) for row in served if row[5] is not None][-LATENCY_SAMPLE:]
    return VariantObservations(
        name=name,
        assigned=len(served),
        errors=sum(1 for row in failed if row[3]),
        fallbacks=sum(1 for row in failed if row[4]),
        latency_p95_ms=nearest_rank(sorted(latencies), 0.95),
        cost_sum=float(sum(row[6] or 0 for row in served)),
    )
