"""One LearningPolicy's loop as numbers: what ``GET /v1/loop/{ns}/{name}`` answers and the dashboard draws.

The dashboard must show the figures the API and ``kaizen experiment report`` give, so both read this
one function. Data inflow, pairs by source and the review backlog are counted by ``store.loop``; each
experiment the policy's route carried is told by the report's own code (``report.story`` and
``report.summarize`` over ``store.experiment_series``) with the Experiment's own champion, alpha and
minimum detectable effect, read from the operator's summary of it (``loop_objects_view``; the
gateway does not read Kubernetes). Before the operator has summarised it, the report's defaults
stand in (0.05 and 0.05) and the champion is the route's while the route carries the experiment,
else the variant that had most of its first requests (a rollout starts on the champion).
``object`` is that summary: the Experiment's decision, when and why, its status rows (the table the
report prints once decided) and its drift watch. ``decidedAt`` marks the first snapshot whose
confidence sequence excludes zero for some challenger: the statistical decision point, which the
Experiment acts on at its next look. ``trainingRuns`` and ``policyStatus`` (champion and lineage
with the TrainingRun behind each) are the operator's summaries too; ``lineage`` lists each
experiment's first champion, then the route's now. Nothing here holds a prompt or an output.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from controllers.api.routes import RouteConfig, experiment_key
from controllers.decisions.experiments.report import Series, Story, story, summarize
from controllers.gateway import loop_objects_view
from controllers.store.experiment_series import experiment_series
from controllers.store.experiments import get_route
from controllers.store.loop import (
    find_policy,
    inflow,
    pairs_by_source,
    pending_annotations,
    route_experiments,
    track_of,
)

ALPHA = 0.05
MIN_DETECTABLE_EFFECT = 0.05
BUCKETS = 24


def loop_view(session: Session, namespace: str, name: str) -> dict[str, Any] | None:
    """The answer's JSON (camelCase); None when the store has no such policy."""
    policy = find_policy(session, namespace, name)
    if policy is None:
        return None
    track = track_of(policy)
    found = get_route(session, namespace, name)
    route = found[0] if found else None
    flow = inflow(session, track, datetime.now(UTC))
    pairs = pairs_by_source(session, track)
    objects = loop_objects_view.experiments(session, namespace, name)
    experiments = [
        _experiment(session, key, route, objects.get(key))
        for key in _keys(route, route_experiments(session, namespace, name))
    ]
    recorded = loop_objects_view.policy_status(session, namespace, name)
    return {
        "namespace": namespace,
        "name": name,
        "track": {"agent": policy.agent, "role": policy.role, "taskFamily": policy.task_family},
        "inflow": {
            "runs": flow.runs,
            "runsLast24h": flow.runs_recent,
            "feedback": flow.feedback,
            "rewardedRuns": flow.rewarded_runs,
            "meanReward": flow.mean_reward,
        },
        "pairs": [
            {"source": p.source, "pending": p.pending, "approved": p.approved, "rejected": p.rejected}
            for p in pairs
        ],
        "reviewBacklog": {
            "pairs": sum(p.pending for p in pairs),
            "annotations": pending_annotations(session, namespace),
        },
        "route": _route(route),
        "lineage": _lineage(route, experiments),
        "policyStatus": recorded,
        "trainingRuns": loop_objects_view.training_runs(session, namespace, name),
        "experiments": experiments,
    }


def _keys(route: RouteConfig | None, seen: list[str]) -> list[str]:
    """The experiments to show: those with traffic, and the route's own even before its first request."""
    if route is not None and route.experiment and route.experiment not in seen:
        return [*seen, route.experiment]
    return seen


def _route(route: RouteConfig | None) -> dict[str, Any] | None:
    if route is None:
        return None
    return {
        "champion": route.champion.name,
        "experiment": route.experiment,
        "weights": {variant.name: variant.weight for variant in route.variants},
    }


def _lineage(route: RouteConfig | None, experiments: list[dict[str, Any]]) -> list[str]:
    """The champions in the order experiments ran against them, then the route's current one."""
    chain: list[str] = []
    for name in [e.get("startedWith") for e in experiments] + ([route.champion.name] if route else []):
        if name and (not chain or chain[-1] != name):
            chain.append(name)
    return chain


def _started_with(series: Series) -> str | None:
    """The variant that served most of the experiment's first requests: the champion it began against
    (None when no request has been served and no reward recorded yet)."""
    first = next((shares for shares in series.traffic if sum(shares.values()) > 0), {})
    rewarded = series.stream.names[0] if series.stream.names else None
    return max(sorted(first), key=lambda variant: first[variant], default=rewarded)


def _champion(
    series: Series, key: str, route: RouteConfig | None, found: dict[str, Any] | None
) -> str | None:
    if found is not None and found.get("champion"):
        return str(found["champion"])  # the Experiment's own spec, as the report reads it
    if route is not None and route.experiment == key:
        return route.champion.name
    return _started_with(series)


def _experiment(
    session: Session, key: str, route: RouteConfig | None, found: dict[str, Any] | None
) -> dict[str, Any]:
    """One experiment's story from its traffic; ``found``: the operator's summary of the Experiment."""
    series = experiment_series(session, key, buckets=BUCKETS)
    carried = route is not None and route.experiment == key
    answer: dict[str, Any] = {
        "experiment": key, "current": carried, "champion": None, "variants": [], "object": found,
    }  # fmt: skip
    if series is None:
        return answer
    champion = _champion(series, key, route, found)
    if champion is None:  # recorded, but nothing served or rewarded yet: no story to tell
        return answer
    alpha = float((found or {}).get("alpha") or ALPHA)
    effect = float((found or {}).get("minDetectableEffect") or MIN_DETECTABLE_EFFECT)
    told = story(series, champion, alpha=alpha, min_detectable_effect=effect)
    weights = {v.name: v.weight for v in route.variants} if route is not None and carried else None
    rows = summarize(series, champion, told, weights)
    answer.update(
        champion=champion,
        startedWith=_started_with(series),
        alpha=alpha,
        variants=[
            {
                "variant": row.variant,
                "role": row.role,
                "weight": row.weight,
                "samples": row.samples,
                "meanReward": row.mean_reward,
                "lower": _finite(row.lower),
                "upper": _finite(row.upper),
                "pValue": row.p_value,
            }
            for row in rows
        ],
        timeline=_timeline(series, told),
        decidedAt=_decided_at(told),
    )
    return answer


def _timeline(series: Series, told: Story) -> dict[str, Any]:
    return {
        "times": [edge.isoformat() for edge in told.times],
        "means": {name: [mean for _, mean in means] for name, means in told.means.items()},
        "bounds": {
            name: [[_finite(look.lower), _finite(look.upper)] for look in looks]
            for name, looks in told.contrasts.items()
        },
        "traffic": [dict(shares) for shares in series.traffic],
    }


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: an unbounded side of a confidence sequence is null."""
    return value if value is not None and math.isfinite(value) else None


def _decided_at(told: Story) -> str | None:
    for index, edge in enumerate(told.times):
        for looks in told.contrasts.values():
            look = looks[index]
            if look.lower > 0 or look.upper < 0:
                return edge.isoformat()
    return None


def experiment_name(key: str, namespace: str) -> str:
    """An experiment key's name part (``ns/name`` -> ``name``) when it is in ``namespace``."""
    prefix = experiment_key(namespace, "")
    return key[len(prefix) :] if key.startswith(prefix) else key
