"""One experiment's observations over time: cumulative snapshots at evenly spaced instants.

The report (``kaizen experiment report``) shows how each variant's reward and confidence sequence
evolved and how traffic moved. It needs the numbers ``controllers.store.experiments.observations``
computes, as of many instants. Instead of one aggregate query per instant, the rows are read once in
time order and accumulated with numpy, so a report over a million requests is still one scan.

Attribution is exactly that of ``observations`` (see its module docstring): traffic, cost, latency and
rewards belong to the variant that served a request; errors and fallbacks to the variant that was
assigned; pinned requests are left out. A reward counts at the time its request was served.

Weights over time are the hashed split observed within each bucket, in percent. When assignment works
they are the configured weights give or take sampling noise; the sample-ratio check says whether they
are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from controllers.api.routes import RouteConfig, experiment_key
from controllers.decisions.experiments.observations import VariantObservations
from controllers.store.experiments import LATENCY_SAMPLE, SAME_REQUEST, list_routes, nearest_rank
from controllers.store.models import Assignment, Run

Snapshot = tuple[datetime, dict[str, VariantObservations], dict[str, int]]


def find_route(session: Session, namespace: str, name: str) -> RouteConfig | None:
    """The route that carries this Experiment's traffic: its champion and current weights."""
    key = experiment_key(namespace, name)
    return next((config for config, _ in list_routes(session) if config.experiment == key), None)


def observation_series(
    session: Session, experiment: str, buckets: int = 24, success_threshold: float = 0.5
) -> list[Snapshot]:
    """``buckets`` snapshots (time, observations so far, observed split within the bucket), oldest first."""
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    counted = and_(Assignment.experiment == experiment, Assignment.pinned.is_(False))
    traffic = session.execute(
        select(
            Assignment.created_at,
            Assignment.variant,
            Assignment.served_variant,
            Assignment.error,
            Assignment.fallback,
            Assignment.latency_ms,
            Assignment.cost_tokens,
        )
        .where(counted)
        .order_by(Assignment.created_at, Assignment.request_id)
    ).all()
    if not traffic:
        return []
    rewarded = session.execute(
        select(Assignment.created_at, Assignment.served_variant, Run.reward)
        .join(Run, SAME_REQUEST)
        .where(counted, Run.reward.is_not(None))
        .order_by(Assignment.created_at)
    ).all()
    names = sorted({row[1] for row in traffic} | {row[2] for row in traffic})
    columns = _columns(traffic, rewarded, {name: code for code, name in enumerate(names)})
    start, end = traffic[0][0], traffic[-1][0]
    edges = [start + (end - start) * (k / buckets) for k in range(1, buckets + 1)]
    series: list[Snapshot] = []
    previous_end, weights = 0, dict.fromkeys(names, 0)
    for edge in edges:
        upto = int(np.searchsorted(columns["time"], edge.timestamp(), side="right"))
        rewards_upto = int(np.searchsorted(columns["reward_time"], edge.timestamp(), side="right"))
        snapshot = {
            name: _observe(columns, name, code, upto, rewards_upto, success_threshold)
            for code, name in enumerate(names)
        }
        window = np.bincount(columns["assigned_to"][previous_end:upto], minlength=len(names))
        if window.sum():
            weights = percentages({name: int(window[code]) for code, name in enumerate(names)})
        series.append((edge, snapshot, weights))
        previous_end = upto
    return series


def _columns(
    traffic: Sequence[Any], rewarded: Sequence[Any], codes: dict[str, int]
) -> dict[str, np.ndarray[Any, Any]]:
    """The rows as numpy columns, variant names as small integer codes."""
    return {
        "time": np.array([row[0].timestamp() for row in traffic]),
        "assigned_to": np.array([codes[row[1]] for row in traffic], dtype=np.int64),
        "served_by": np.array([codes[row[2]] for row in traffic], dtype=np.int64),
        "error": np.array([bool(row[3]) for row in traffic]),
        "fallback": np.array([bool(row[4]) for row in traffic]),
        "latency": np.array([np.nan if row[5] is None else float(row[5]) for row in traffic]),
        "cost": np.array([0.0 if row[6] is None else float(row[6]) for row in traffic]),
        "reward_time": np.array([row[0].timestamp() for row in rewarded]),
        "reward_by": np.array([codes.get(row[1], -1) for row in rewarded], dtype=np.int64),
        "reward": np.array([float(row[2]) for row in rewarded]),
    }


def _observe(
    columns: Mapping[str, np.ndarray[Any, Any]],
    name: str,
    code: int,
    upto: int,
    rewards_upto: int,
    threshold: float,
) -> VariantObservations:
    served = columns["served_by"][:upto] == code
    assigned = columns["assigned_to"][:upto] == code
    mine = columns["reward"][:rewards_upto][columns["reward_by"][:rewards_upto] == code]
    latencies = columns["latency"][:upto][served]
    recent = latencies[~np.isnan(latencies)][-LATENCY_SAMPLE:]
    return VariantObservations(
        name=name,
        assigned=int(served.sum()),
        rewards=len(mine),
        reward_sum=float(mine.sum()),
        reward_sum_squares=float((mine * mine).sum()),
        successes=int((mine >= threshold).sum()),
        errors=int((assigned & columns["error"][:upto]).sum()),
        fallbacks=int((assigned & columns["fallback"][:upto]).sum()),
        latency_p95_ms=nearest_rank(sorted(float(value) for value in recent), 0.95),
        cost_sum=float(columns["cost"][:upto][served].sum()),
    )


def percentages(counts: Mapping[str, int]) -> dict[str, int]:
    """Whole percents summing to 100 (largest remainder); all zero when there is nothing to split."""
    total = sum(counts.values())
    if total == 0:
        return dict.fromkeys(counts, 0)
    exact = {name: 100.0 * count / total for name, count in counts.items()}
    whole = {name: int(value) for name, value in exact.items()}
    for name in sorted(counts, key=lambda n: (whole[n] - exact[n], n))[: 100 - sum(whole.values())]:
        whole[name] += 1
    return whole
