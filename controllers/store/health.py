"""What the store holds for one learning track: the counts a LearningPolicy reports and triggers on."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from controllers.store.models import DEFAULT_NAMESPACE, PreferencePair, ReviewState, Run
from controllers.store.tracks import Track, trainable_pairs


@dataclass(frozen=True)
class TrackHealth:
    runs: int
    approved_pairs: int
    new_approved_pairs: int
    pending_review: int
    pairs_by_source: dict[str, int] = field(default_factory=dict)


def track_health(
    session: Session,
    *,
    agent: str | None,
    role: str | None,
    task_family: str | None,
    require_review: bool,
    since: datetime | None,
    sources: Collection[str] | None = None,
    window_start: datetime | None = None,
    namespace: str = DEFAULT_NAMESPACE,
) -> TrackHealth:
    """Counts for the track (in ``namespace``); "approved" follows the policy: reviewed-and-approved when review is
    required, else anything not rejected. ``since`` is the last trained snapshot's watermark.

    Only pairs a snapshot of this policy would export count as approved (new or not): those of the
    enabled ``sources``, created from ``window_start`` (the data's maxAge) on. ``pairs_by_source``
    shows every source, so a person sees pairs their policy leaves out (``explicit: false``, say).
    """
    track = Track(agent, role, task_family, namespace)
    trainable = trainable_pairs(require_review)
    by_source = session.execute(
        select(PreferencePair.source, func.count())
        .where(*track.pairs(), trainable)
        .group_by(PreferencePair.source)
    ).all()
    exported = [*track.pairs(), trainable]
    if sources is not None:
        exported.append(PreferencePair.source.in_(list(sources)))
    if window_start is not None:
        exported.append(PreferencePair.created_at >= window_start)
    newer = [PreferencePair.created_at > since] if since else []
    pending = [*track.pairs(), PreferencePair.review_state == ReviewState.PENDING.value]
    return TrackHealth(
        runs=_count(session, Run, track.runs()),
        approved_pairs=_count(session, PreferencePair, exported),
        new_approved_pairs=_count(session, PreferencePair, [*exported, *newer]),
        pending_review=_count(session, PreferencePair, pending) if require_review else 0,
        pairs_by_source={str(source): int(count) for source, count in by_source},
    )


def _count(
    session: Session, table: type[Run] | type[PreferencePair], where: list[ColumnElement[bool]]
) -> int:
    return int(session.scalar(select(func.count()).where(*where).select_from(table)) or 0)
