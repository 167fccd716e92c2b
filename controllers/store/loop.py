"""What the store knows of one LearningPolicy's loop, counted for the dashboard (``GET /v1/loop/...``).

A person watching the loop asks: is experience coming in, how many preference pairs of each source
are there and how many wait for a person, and which experiments has this policy's route carried.
All of it is counted here with the track's own narrowing (``tracks.Track``: the policy's agent, role
and task family within its namespace), on PostgreSQL and SQLite alike, so the dashboard and the
JSON API read the very same numbers. Training runs and the champion's history are Kubernetes
objects (TrainingRun, LearningPolicy status): the gateway does not read them, so neither does this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from controllers.store.models import (
    Annotation,
    Assignment,
    Feedback,
    Policy,
    PreferencePair,
    ReviewState,
    Run,
)
from controllers.store.tracks import Track

RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class Inflow:
    runs: int
    runs_recent: int  # within ``RECENT`` of ``now``
    feedback: int  # feedback on the track's runs
    rewarded_runs: int
    mean_reward: float | None


@dataclass(frozen=True)
class PairCount:
    source: str
    pending: int
    approved: int
    rejected: int


def find_policy(session: Session, namespace: str, name: str) -> Policy | None:
    return session.get(Policy, (namespace, name))


def list_policies(session: Session, namespaces: tuple[str, ...]) -> list[tuple[str, str]]:
    """(namespace, name) of every policy in ``namespaces`` ('*': all), sorted."""
    query = select(Policy.namespace, Policy.name).order_by(Policy.namespace, Policy.name)
    if "*" not in namespaces:
        query = query.where(Policy.namespace.in_(namespaces))
    return [(row.namespace, row.name) for row in session.execute(query)]


def track_of(policy: Policy) -> Track:
    return Track(policy.agent or None, policy.role or None, policy.task_family or None, policy.namespace)


def inflow(session: Session, track: Track, now: datetime) -> Inflow:
    runs = and_(*track.runs())
    counted = session.execute(
        select(func.count(), func.count(Run.reward), func.avg(Run.reward)).select_from(Run).where(runs)
    ).one()
    recent = session.scalar(select(func.count()).select_from(Run).where(runs, Run.created_at >= now - RECENT))
    feedback = session.scalar(
        select(func.count())
        .select_from(Feedback)
        .join(Run, and_(Run.namespace == Feedback.namespace, Run.id == Feedback.run_id))
        .where(runs)
    )
    mean = counted[2]
    return Inflow(
        runs=int(counted[0]),
        runs_recent=int(recent or 0),
        feedback=int(feedback or 0),
        rewarded_runs=int(counted[1]),
        mean_reward=None if mean is None else float(mean),
    )


def pairs_by_source(session: Session, track: Track) -> list[PairCount]:
    rows = session.execute(
        select(PreferencePair.source, PreferencePair.review_state, func.count())
        .where(*track.pairs())
        .group_by(PreferencePair.source, PreferencePair.review_state)
    ).all()
    tally: dict[str, dict[str, int]] = {}
    for source, state, count in rows:
        tally.setdefault(source, {})[state] = int(count)
    return [
        PairCount(
            source,
            found.get(ReviewState.PENDING.value, 0),
            found.get(ReviewState.APPROVED.value, 0),
            found.get(ReviewState.REJECTED.value, 0),
        )
        for source, found in sorted(tally.items())
    ]


def pending_annotations(session: Session, namespace: str) -> int:
    """Runs flagged for a person in the namespace (annotations are not narrowed to a track)."""
    found = session.scalar(
        select(func.count())
        .select_from(Annotation)
        .where(Annotation.namespace == namespace, Annotation.state == ReviewState.PENDING.value)
    )
    return int(found or 0)


def route_experiments(session: Session, namespace: str, route: str) -> list[str]:
    """The experiments (store keys) whose requests this route carried, the first one started first."""
    rows = session.execute(
        select(Assignment.experiment, func.min(Assignment.created_at))
        .where(Assignment.namespace == namespace, Assignment.route == route)
        .group_by(Assignment.experiment)
        .order_by(func.min(Assignment.created_at), Assignment.experiment)
    ).all()
    return [row[0] for row in rows]
