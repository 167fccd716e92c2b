"""What the review workbench counts: a reviewer's progress through their queue, and how much the
reviewers (and the LLM judge) agree on a track's items; and the store side of ``spec.review``.

Agreement is computed over verdicts in the pair's own terms (``preference``), so two reviewers who saw
the pair in opposite orders and preferred the same stored answer agree. The judge's label of a pair
is the pair itself: a ``llmJudge`` pair is the judge's verdict that ``chosen`` beats ``rejected``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from controllers.data.pairs import PairSource
from controllers.decisions.reviewing import Preference, judge_agreement, nominal_alpha
from controllers.store.models import PreferencePair
from controllers.store.review_models import ReviewSettings, ReviewSlot, ReviewVerdict
from controllers.store.review_queue import PENDING, queue_filter


def _count(session: Session, query: Any) -> int:
    return int(session.execute(query).scalar_one())


def progress(
    session: Session,
    namespace: str,
    reviewer: str,
    now: datetime,
    agent: str | None = None,
    policy: str | None = None,
) -> dict[str, int]:
    """Pending items, live reservations (all, and the reviewer's), and verdicts (the reviewer's today,
    the reviewer's in all, everyone's in all) of the namespace's queue, narrowed to agent/policy."""
    _, track = queue_filter(session, namespace, agent, policy)
    where = [*track, PENDING]
    on_pair = and_(ReviewSlot.namespace == PreferencePair.namespace, ReviewSlot.pair_id == PreferencePair.id)
    live = select(func.count()).select_from(ReviewSlot).join(PreferencePair, on_pair)
    live = live.where(*where, ReviewSlot.done.is_(False), ReviewSlot.expires_at > now)
    judged_pair = and_(
        ReviewVerdict.namespace == PreferencePair.namespace, ReviewVerdict.pair_id == PreferencePair.id
    )
    verdicts = select(func.count()).select_from(ReviewVerdict).join(PreferencePair, judged_pair).where(*track)
    mine = verdicts.where(ReviewVerdict.reviewer == reviewer)
    midnight = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    return {
        "pending": _count(session, select(func.count()).select_from(PreferencePair).where(*where)),
        "reserved": _count(session, live),
        "reservedByMe": _count(session, live.where(ReviewSlot.reviewer == reviewer)),
        "doneTodayByMe": _count(session, mine.where(ReviewVerdict.created_at >= midnight)),
        "doneByMe": _count(session, mine),
        "doneAll": _count(session, verdicts),
    }  # fmt: skip


def agreement(session: Session, namespace: str, policy: str | None = None) -> dict[str, Any]:
    """Krippendorff's alpha between reviewers on the track's items, and people vs the LLM judge."""
    _, track = queue_filter(session, namespace, None, policy)
    rows = session.execute(
        select(ReviewVerdict.pair_id, ReviewVerdict.preference, PreferencePair.source)
        .join(PreferencePair, and_(ReviewVerdict.namespace == PreferencePair.namespace,
                                   ReviewVerdict.pair_id == PreferencePair.id))
        .where(*track)
        .order_by(ReviewVerdict.pair_id, ReviewVerdict.reviewer)
    ).all()  # fmt: skip
    units: defaultdict[str, list[str]] = defaultdict(list)
    judged: defaultdict[str, list[Preference]] = defaultdict(list)
    for pair_id, found, source in rows:
        units[pair_id].append(found)
        if source == PairSource.LLM_JUDGE.value:
            judged[pair_id].append(Preference(found))
    alpha = nominal_alpha(units)
    judge = judge_agreement(judged.values())
    return {
        "namespace": namespace, "policy": policy, "items": len(units), "verdicts": len(rows),
        "reviewers": {"alpha": alpha.value, "items": alpha.items, "pairs": alpha.pairable, "reason": alpha.reason},
        "judge": {"items": judge.items, "verdicts": judge.judgements, "agreeing": judge.agreeing,
                  "rate": judge.rate,
                  "reason": None if judge.judgements else "no item the LLM judge labelled has a person's verdict"},
    }  # fmt: skip


def upsert_review_settings(
    session: Session, namespace: str, policy: str, reviewers: int, guidelines: str, now: datetime
) -> None:
    """Store a policy's ``spec.review`` (how many reviewers per item, its guidelines)."""
    found = session.get(ReviewSettings, (namespace, policy))
    if found is None:
        session.add(ReviewSettings(namespace=namespace, policy=policy, reviewers_per_item=reviewers,
                                   guidelines=guidelines, updated_at=now))  # fmt: skip
    elif (found.reviewers_per_item, found.guidelines) != (reviewers, guidelines):
        found.reviewers_per_item, found.guidelines, found.updated_at = reviewers, guidelines, now
