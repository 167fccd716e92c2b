"""A reviewer's verdict on the item they reserved, and what it changes: the pair's review state once
enough people judged it, and a new human-correction pair when they wrote a better answer.

The verdict names a side as shown; ``decisions.reviewing.preference`` maps it back through the order
stored with the reservation. A verdict is accepted only from the reviewer holding an unexpired
reservation of the item, once per reviewer and item (``ReviewRefused`` says which rule it broke). A
correction is treated as the correction feedback is today (``controllers.data.pairs.from_corrections``):
the corrected text is chosen over the answer the reviewer rejected (over both after a tie or "both
bad"), as a ``humanCorrection`` pair with the rejected run as lineage. A person wrote it in the
review itself, so it is stored approved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controllers.data.pairs import PairSource
from controllers.decisions.reviewing import Preference, Verdict, losers, preference, review_state
from controllers.store.ingest import insert_pairs
from controllers.store.models import PreferencePair, ReviewState
from controllers.store.review_models import ReviewSlot, ReviewVerdict
from controllers.store.review_queue import namespace_rules, rules_for


class UnknownPair(LookupError):
    """No pair of that id in the namespace."""


class ReviewRefused(Exception):
    """A verdict the review rules do not accept (not reserved, reserved by another, expired, twice)."""


@dataclass(frozen=True)
class VerdictIn:
    verdict: Verdict
    correction: str | None = None
    tags: tuple[str, ...] = ()
    note: str = ""


def _refusal(session: Session, namespace: str, pair_id: str, reviewer: str, now: datetime) -> str:
    """Why ``reviewer`` holds no live reservation of the pair."""
    if session.get(ReviewVerdict, (namespace, pair_id, reviewer)) is not None:
        return f"you already gave a verdict on pair {pair_id!r}"
    slots = (
        session.execute(
            select(ReviewSlot).where(ReviewSlot.namespace == namespace, ReviewSlot.pair_id == pair_id)
        )
        .scalars()
        .all()
    )
    for slot in slots:
        if slot.reviewer == reviewer and not slot.done:
            return f"your reservation of pair {pair_id!r} expired at {slot.expires_at.isoformat()}; reserve it again"
    if any(not slot.done and slot.expires_at > now for slot in slots):
        return f"pair {pair_id!r} is reserved by another reviewer"
    return f"pair {pair_id!r} is not reserved by you: reserve it first (POST /v1/review/reservations)"


def _close_slot(
    session: Session, namespace: str, pair_id: str, reviewer: str, now: datetime
) -> ReviewSlot | None:
    slot = session.execute(
        select(ReviewSlot).where(
            ReviewSlot.namespace == namespace, ReviewSlot.pair_id == pair_id, ReviewSlot.reviewer == reviewer,
            ReviewSlot.done.is_(False), ReviewSlot.expires_at > now,
        )
    ).scalar_one_or_none()  # fmt: skip
    if slot is None:
        return None
    closed = session.execute(
        update(ReviewSlot)
        .where(ReviewSlot.namespace == namespace, ReviewSlot.pair_id == pair_id, ReviewSlot.slot == slot.slot,
               ReviewSlot.reviewer == reviewer, ReviewSlot.done.is_(False), ReviewSlot.expires_at > now)
        .values(done=True).returning(ReviewSlot.slot)
    ).first()  # fmt: skip
    return slot if closed is not None else None


def _corrections(
    session: Session, pair: PreferencePair, found: Preference, text: str, now: datetime
) -> list[str]:
    rows = []
    for loser in losers(found):
        answer = pair.chosen if loser == "chosen" else pair.rejected
        if not text.strip() or text.strip() == answer.strip():
            continue
        run_id = pair.chosen_run_id if loser == "chosen" else pair.rejected_run_id
        rows.append({
            "source": PairSource.HUMAN_CORRECTION.value, "prompt": pair.prompt, "chosen": text, "rejected": answer,
            "margin": None, "chosen_run_id": None, "rejected_run_id": run_id, "agent": pair.agent,
            "role": pair.role, "task_family": pair.task_family, "created_at": now,
            "review_state": ReviewState.APPROVED.value,
        })  # fmt: skip
    insert_pairs(session, rows, pair.namespace)
    return [str(row["id"]) for row in rows]


def submit(
    session: Session, namespace: str, reviewer: str, pair_id: str, given: VerdictIn, now: datetime
) -> dict[str, Any]:
    """Record ``reviewer``'s verdict on a pair they hold; settle the pair when it has enough verdicts."""
    pair = session.get(PreferencePair, (namespace, pair_id))
    if pair is None:
        raise UnknownPair(f"namespace {namespace!r} has no pair {pair_id!r}")
    slot = _close_slot(session, namespace, pair_id, reviewer, now)
    if slot is None or session.get(ReviewVerdict, (namespace, pair_id, reviewer)) is not None:
        raise ReviewRefused(_refusal(session, namespace, pair_id, reviewer, now))
    found = preference(given.verdict, slot.left_is_chosen)
    session.add(ReviewVerdict(
        namespace=namespace, pair_id=pair_id, reviewer=reviewer, created_at=now, verdict=given.verdict.value,
        preference=found.value, left_is_chosen=slot.left_is_chosen, tags=list(given.tags), note=given.note,
        correction=given.correction,
    ))  # fmt: skip
    session.flush()
    corrections = _corrections(session, pair, found, given.correction, now) if given.correction else []
    preferences = [
        Preference(value)
        for value in session.execute(
            select(ReviewVerdict.preference).where(ReviewVerdict.namespace == namespace, ReviewVerdict.pair_id == pair_id)
        ).scalars()
    ]  # fmt: skip
    needed = rules_for(namespace_rules(session, namespace), pair).reviewers
    if len(preferences) >= needed and pair.review_state == ReviewState.PENDING.value:
        pair.review_state = review_state(preferences)
    return {
        "namespace": namespace, "pairId": pair_id, "preference": found.value, "verdicts": len(preferences),
        "reviewersNeeded": needed, "reviewState": pair.review_state, "correctionPairs": corrections,
    }  # fmt: skip
