"""The store side of experiments: routes with versions, assignment rows, per-variant observations.

Routes: ``put_route`` bumps a route's version only when its config changes (same body, same version),
in one statement, so concurrent writers cannot hand out one version twice. ``load_routes`` returns
what changed since the versions a replica already holds: a scan of (namespace, name, version), cheap
enough to run every half second. Each row is parsed on its own, so a row that does not parse (one
written around the API) is reported and skipped, never failing the others.

Observations for one experiment, pinned (debugging) requests left out, with these attributions:

* ``assigned``, ``cost_sum``, ``latency_p95_ms`` and the rewards belong to the variant that *served*
  the request (a fallback counts for the champion that answered it);
* ``errors`` and ``fallbacks`` belong to the variant that was *assigned* and failed. The hash's own
  split, for a sample-ratio check, is therefore ``assigned + fallbacks`` for a challenger and
  ``assigned`` minus the challengers' fallbacks for the champion;
* every run that names a request id is one reward for the variant that served that request; while
  no run names it, the reward that feedback naming only the request gave it is (``REWARD``).

Counts and sums are computed in SQL on PostgreSQL and SQLite alike; the p95 latency comes from the
most recent ``LATENCY_SAMPLE`` served requests per variant (SQLite has no percentile function, and a
guardrail wants recent latency anyway), with the nearest-rank definition.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.orm import Session

from controllers.api.routes import RouteConfig
from controllers.decisions.experiments.observations import VariantObservations
from controllers.store.db import insert_ignoring_duplicates
from controllers.store.models import DEFAULT_NAMESPACE, Assignment, Route, Run

LATENCY_SAMPLE = 10_000
# A run rewards the request it names in its own namespace: the namespace of the route that served it.
SAME_REQUEST = and_(Run.namespace == Assignment.namespace, Run.request_id == Assignment.request_id)
# A request's reward, read through ``outerjoin(Run, SAME_REQUEST)``: each run naming it is one reward;
# while none does, the one feedback naming the request alone gave it (``request_feedback``), once.
REWARD = case((Run.id.is_(None), Assignment.reward), else_=Run.reward)
# When that reward was recorded: the run's last change, else the feedback's.
REWARDED_AT = func.coalesce(Run.changed_at, Assignment.rewarded_at)

log = logging.getLogger("kaizen.store")


@dataclass(frozen=True)
class RouteChanges:
    """What ``load_routes`` found: new or changed routes with their versions, keys now gone, and rows
    that do not parse as (key, version, reason)."""

    changed: list[tuple[RouteConfig, int]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    invalid: list[tuple[str, int, str]] = field(default_factory=list)


def config_hash(config: RouteConfig) -> str:
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def put_route(session: Session, config: RouteConfig) -> tuple[int, bool]:
    """Store ``config``; returns (version, changed). The same config again keeps its version."""
    digest, now = config_hash(config), datetime.now(UTC)
    document = config.model_dump(mode="json")
    key = and_(Route.namespace == config.namespace, Route.name == config.name)
    created = session.execute(
        insert_ignoring_duplicates(session, Route)
        .values(
            namespace=config.namespace,
            name=config.name,
            config=document,
            config_hash=digest,
            version=1,
            updated_at=now,
        )
        .returning(Route.version)
    ).first()
    if created is not None:
        return 1, True
    bumped = session.execute(
        update(Route)
        .where(key, Route.config_hash != digest)
        .values(config=document, config_hash=digest, version=Route.version + 1, updated_at=now)
        .returning(Route.version)
    ).first()
    if bumped is not None:
        return int(bumped[0]), True
    return int(session.execute(select(Route.version).where(key)).scalar_one()), False


class InvalidRouteRow(ValueError):
    """A stored route that does not parse as a RouteConfig (written around the API, or by an old version)."""

    def __init__(self, key: str, version: int, reason: str) -> None:
        super().__init__(f"stored route {key!r} (version {version}) is invalid: {reason}")
        self.key, self.version, self.reason = key, version, reason


def _fetch(session: Session, namespace: str, name: str) -> tuple[RouteConfig, int] | None:
    """The row parsed and checked against its own key; ``InvalidRouteRow`` when it cannot be served."""
    key, version = f"{namespace}/{name}", 0
    try:
        row = session.get(Route, (namespace, name))
        if row is None:
            return None
        version = int(row.version)
        config = RouteConfig.model_validate(row.config)
    except (ValueError, TypeError) as error:  # pydantic's ValidationError, a JSON decode error
        raise InvalidRouteRow(key, version, _first_line(error)) from error
    if config.key != key:
        raise InvalidRouteRow(key, version, f"its config names route {config.key!r}")
    return config, version


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())[:500]


def get_route(session: Session, namespace: str, name: str) -> tuple[RouteConfig, int] | None:
    """The route and its version, None when absent; ``InvalidRouteRow`` when its row does not parse."""
    return _fetch(session, namespace, name)


def delete_route(session: Session, namespace: str, name: str) -> bool:
    result = session.execute(delete(Route).where(Route.namespace == namespace, Route.name == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_routes(session: Session) -> list[tuple[RouteConfig, int]]:
    """Every route that parses; a row that does not is left out, with a warning."""
    keys = session.execute(select(Route.namespace, Route.name).order_by(Route.namespace, Route.name))
    found = []
    for namespace, name in keys.all():
        try:
            route = _fetch(session, namespace, name)
        except InvalidRouteRow as error:
            log.warning("%s; skipped", error)
            continue
        if route is not None:
            found.append(route)
    return found


def load_routes(session: Session, known: Mapping[str, int]) -> RouteChanges:
    """Routes whose version differs from ``known`` (key ``namespace/name`` → version), and removed keys.

    Each row is parsed on its own: one that does not parse is reported in ``invalid`` (with the version
    it has, so a caller that passes it back in ``known`` is not told again until it changes)."""
    versions = {
        f"{ns}/{name}": (ns, name, int(version))
        for ns, name, version in session.execute(select(Route.namespace, Route.name, Route.version))
    }
    changes = RouteChanges(removed=[key for key in known if key not in versions])
    for key, (ns, name, version) in versions.items():
        if known.get(key) == version:
            continue
        try:
            found = _fetch(session, ns, name)
        except InvalidRouteRow as error:
            changes.invalid.append((key, version, error.reason))
            continue
        if found is not None:
            changes.changed.append(found)
    return changes


def _namespace_of(experiment: str) -> str:
    namespace, slash, _ = experiment.partition("/")
    return namespace if slash else DEFAULT_NAMESPACE


def record_assignments(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert assignment rows, each in its experiment's namespace (the key is ``<namespace>/<name>``);
    a request id already stored there (a retried flush) is left as it was."""
    if rows:
        rows = [{"namespace": _namespace_of(row["experiment"]), **row} for row in rows]
        session.execute(insert_ignoring_duplicates(session, Assignment), rows)


def observations(
    session: Session, experiment: str, success_threshold: float = 0.5
) -> dict[str, VariantObservations]:
    """Sufficient statistics per variant of ``experiment`` (see the module docstring for attribution)."""
    counted = and_(Assignment.experiment == experiment, Assignment.pinned.is_(False))
    served = Assignment.served_variant
    traffic: Sequence[Any] = session.execute(
        select(served, func.count(), func.coalesce(func.sum(Assignment.cost_tokens), 0))
        .where(counted)
        .group_by(served)
    ).all()
    failures: Sequence[Any] = session.execute(
        select(
            Assignment.variant,
            func.sum(case((Assignment.error.is_(True), 1), else_=0)),
            func.sum(case((Assignment.fallback.is_(True), 1), else_=0)),
        )
        .where(counted)
        .group_by(Assignment.variant)
    ).all()
    reward = REWARD
    rewards: Sequence[Any] = session.execute(
        select(
            served,
            func.count(),
            func.sum(reward),
            func.sum(reward * reward),
            func.sum(case((reward >= success_threshold, 1), else_=0)),
        )
        .outerjoin(Run, SAME_REQUEST)
        .where(counted, REWARD.is_not(None))
        .group_by(served)
    ).all()
    stats: dict[str, dict[str, Any]] = {}
    for name, count, cost in traffic:
        stats.setdefault(name, {})
        stats[name].update(assigned=int(count), cost_sum=float(cost))
    for name, errors, fallbacks in failures:
        stats.setdefault(name, {}).update(errors=int(errors or 0), fallbacks=int(fallbacks or 0))
    for name, count, total, squares, successes in rewards:
        stats.setdefault(name, {}).update(
            rewards=int(count),
            reward_sum=float(total or 0.0),
            reward_sum_squares=float(squares or 0.0),
            successes=int(successes or 0),
        )
    for name in stats:
        stats[name]["latency_p95_ms"] = _recent_p95(session, experiment, name)
    return {name: VariantObservations(name=name, **values) for name, values in sorted(stats.items())}


def _recent_p95(session: Session, experiment: str, variant: str) -> float | None:
    latencies = session.execute(
        select(Assignment.latency_ms)
        .where(
            Assignment.experiment == experiment,
            Assignment.pinned.is_(False),
            Assignment.served_variant == variant,
            Assignment.latency_ms.is_not(None),
        )
        .order_by(Assignment.created_at.desc())
        .limit(LATENCY_SAMPLE)
    ).scalars()
    return nearest_rank(sorted(float(value) for value in latencies if value is not None), 0.95)


def nearest_rank(ordered: Sequence[float], quantile: float) -> float | None:
    """The nearest-rank quantile of an ascending sequence (no interpolation), None when empty."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]
