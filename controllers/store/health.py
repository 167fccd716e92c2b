"""What the store holds for one learning track: the counts a LearningPolicy reports and triggers on."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controllers.store.models import PreferencePair, ReviewState, Run


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
) -> TrackHealth:
    """Counts for the track; "approved" follows the policy: reviewed-and-approved when review is
    required, else anything not rejected. ``since`` is the last trained snapshot's watermark.

    Only pairs a snapshot of this policy would export count as approved (new or not): those of the
    enabled ``sources``, created from ``window_start`` (the data's maxAge) on. ``pairs_by_source``
    shows every source, so a person sees pairs their policy leaves out (``explicit: false``, say).
    """
    pair_track = [
        column == wanted
        for column, wanted in (
            (PreferencePair.agent, agent),
            (PreferencePair.role, role),
            (PreferencePair.task_family, task_family),
        )
        if wanted
    ]
    run_track = [
        column == wanted
        for column, wanted in ((Run.agent, agent), (Run.role, role), (Run.task_family, task_family))
        if wanted
    ]
    trainable = (
        PreferencePair.review_state == ReviewState.APPROVED.value
        if require_review
        else PreferencePair.review_state != ReviewState.REJECTED.value
    )
    by_source = dict(
        session.execute(
            select(PreferencePair.source, func.count())
            .where(*pair_track, trainable)
            .group_by(PreferencePair.source)
        ).all()
    )
    exported = [trainable]
    if sources is not None:
        exported.append(PreferencePair.source.in_(list(sources)))
    if window_start is not None:
        exported.append(PreferencePair.created_at >= window_start)
    approved = session.scalar(select(func.count()).where(*pair_track, *exported).select_from(PreferencePair))
    new_filter = [PreferencePair.created_at > since] if since else []
    new = session.scalar(
        select(func.count()).where(*pair_track, *exported, *new_filter).select_from(PreferencePair)
    )
    pending = session.scalar(
        select(func.count())
        .where(*pair_track, PreferencePair.review_state == ReviewState.PENDING.value)
        .select_from(PreferencePair)
    )
    runs = session.scalar(select(func.count()).where(*run_track).select_from(Run))
    return TrackHealth(
        runs=int(runs or 0),
        approved_pairs=int(approved or 0),
        new_approved_pairs=int(new or 0),
        pending_review=int(pending or 0) if require_review else 0,
        pairs_by_source={str(k): int(v) for k, v in by_source.items()},
    )
