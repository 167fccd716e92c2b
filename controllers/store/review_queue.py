"""Reserving the next item of a namespace's review queue for one reviewer, and releasing it.

An item is a pending pair; the most specific LearningPolicy matching its track says how many
reviewers it needs (``review_settings``, default 1) and which guidelines apply. A reviewer holds one
of the item's slots (``review_models.ReviewSlot``) by inserting it with ``ON CONFLICT DO NOTHING``,
or by taking over a slot whose reservation expired with an update conditioned on that expiry. Only
one writer's statement can change a given row: on PostgreSQL the second waits for the first's commit
and then finds the slot taken (the same guarantee ``SELECT ... FOR UPDATE SKIP LOCKED`` gives, with
no rows locked while reading the queue); SQLite runs one writer at a time. Asking again while holding
an unexpired reservation returns the same item, so a page reloaded is not a second item.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from controllers.store.db import insert_ignoring_duplicates
from controllers.store.models import Policy, PreferencePair, ReviewState
from controllers.store.review_models import ReviewSettings, ReviewSlot, ReviewVerdict
from controllers.store.tracks import Track

PAGE = 100  # candidates read per query while looking for a free slot


class UnknownPolicy(LookupError):
    """The queue was narrowed to a policy its namespace does not have."""


@dataclass(frozen=True)
class Rules:
    """The review settings of one policy (or the defaults, ``policy`` None)."""

    policy: str | None
    track: Track
    reviewers: int = 1
    guidelines: str = ""


@dataclass(frozen=True)
class Reserved:
    pair: PreferencePair
    left_is_chosen: bool
    expires_at: datetime
    rules: Rules


def _rules(session: Session, namespace: str) -> list[Rules]:
    query = (
        select(Policy, ReviewSettings)
        .outerjoin(ReviewSettings, and_(ReviewSettings.namespace == Policy.namespace, ReviewSettings.policy == Policy.name))
        .where(Policy.namespace == namespace)
    )  # fmt: skip
    found = []
    for policy, settings in session.execute(query):
        track = Track(policy.agent or None, policy.role or None, policy.task_family or None, namespace)
        reviewers, guidelines = (settings.reviewers_per_item, settings.guidelines) if settings else (1, "")
        found.append(Rules(policy.name, track, reviewers, guidelines))
    return found


def rules_for(rules: Sequence[Rules], pair: PreferencePair) -> Rules:
    """The most specific policy whose set track fields all match the pair; defaults when none does."""
    best: tuple[int, Rules] | None = None
    for rule in rules:
        fields = [(rule.track.agent, pair.agent), (rule.track.role, pair.role), (rule.track.task_family, pair.task_family)]  # fmt: skip
        if all(not wanted or wanted == actual for wanted, actual in fields):
            specificity = sum(1 for wanted, _ in fields if wanted)
            if best is None or specificity > best[0]:
                best = (specificity, rule)
    return best[1] if best else Rules(None, Track(namespace=pair.namespace))


def namespace_rules(session: Session, namespace: str) -> list[Rules]:
    return _rules(session, namespace)


def queue_filter(
    session: Session, namespace: str, agent: str | None, policy: str | None
) -> tuple[list[Rules], list[Any]]:
    """The namespace's rules and the conditions narrowing its pairs to ``agent``/``policy`` (any
    review state: add ``PENDING`` for the queue itself)."""
    rules = _rules(session, namespace)
    where: list[Any] = [PreferencePair.namespace == namespace]
    if agent:
        where.append(PreferencePair.agent == agent)
    if policy:
        named = next((rule for rule in rules if rule.policy == policy), None)
        if named is None:
            raise UnknownPolicy(f"namespace {namespace!r} has no policy {policy!r}")
        where += named.track.fields(PreferencePair)
    return rules, where


PENDING = PreferencePair.review_state == ReviewState.PENDING.value


def _active(now: datetime) -> Any:
    return or_(ReviewSlot.done.is_(True), ReviewSlot.expires_at > now)


def _mine_held(namespace: str, reviewer: str, now: datetime) -> Any:
    return and_(ReviewSlot.namespace == namespace, ReviewSlot.reviewer == reviewer,
                ReviewSlot.done.is_(False), ReviewSlot.expires_at > now)  # fmt: skip


def _held(
    session: Session, rules: list[Rules], where: list[Any], namespace: str, reviewer: str, now: datetime
) -> Reserved | None:
    query = (
        select(PreferencePair, ReviewSlot)
        .join(ReviewSlot, and_(ReviewSlot.namespace == PreferencePair.namespace, ReviewSlot.pair_id == PreferencePair.id))
        .where(*where, _mine_held(namespace, reviewer, now))
        .order_by(PreferencePair.created_at, PreferencePair.id)
        .limit(1)
    )  # fmt: skip
    row = session.execute(query).first()
    if row is None:
        return None
    pair, slot = row
    return Reserved(pair, slot.left_is_chosen, slot.expires_at, rules_for(rules, pair))


def _take(session: Session, pair: PreferencePair, index: int, values: dict[str, Any], now: datetime) -> bool:
    """Hold slot ``index`` of ``pair``: insert it, or take it over when its reservation expired."""
    key = {"namespace": pair.namespace, "pair_id": pair.id, "slot": index}
    # RETURNING tells what happened (psycopg reports no rowcount for this insert).
    insert = insert_ignoring_duplicates(session, ReviewSlot).values(**key, **values)
    if session.execute(insert.returning(ReviewSlot.slot)).first() is not None:
        return True
    expired = update(ReviewSlot).where(
        ReviewSlot.namespace == pair.namespace, ReviewSlot.pair_id == pair.id, ReviewSlot.slot == index,
        ReviewSlot.done.is_(False), ReviewSlot.expires_at <= now,
    )  # fmt: skip
    return session.execute(expired.values(**values).returning(ReviewSlot.slot)).first() is not None


def _candidates(where: list[Any], namespace: str, reviewer: str, now: datetime) -> Select[Any]:
    """Pending pairs the reviewer has neither judged nor skipped, oldest first, with their occupied slots."""
    same_pair = (ReviewSlot.namespace == PreferencePair.namespace, ReviewSlot.pair_id == PreferencePair.id)
    occupied = select(func.count()).select_from(ReviewSlot).where(*same_pair, _active(now)).scalar_subquery()
    judged = exists().where(ReviewVerdict.namespace == PreferencePair.namespace,
                            ReviewVerdict.pair_id == PreferencePair.id, ReviewVerdict.reviewer == reviewer)  # fmt: skip
    # A reviewer who skipped an item is not offered it again while their skipped slot stands.
    skipped = exists().where(
        *same_pair, ReviewSlot.reviewer == reviewer, ReviewSlot.expires_at < ReviewSlot.reserved_at
    )
    query = select(PreferencePair, occupied).where(*where, ~judged, ~skipped)
    return query.order_by(PreferencePair.created_at, PreferencePair.id)


def reserve_next(
    session: Session,
    namespace: str,
    reviewer: str,
    now: datetime,
    ttl: timedelta,
    agent: str | None = None,
    policy: str | None = None,
    draw: Callable[[], bool] = lambda: secrets.randbelow(2) == 1,
) -> Reserved | None:
    """The item ``reviewer`` holds, else the oldest one they may take, reserved until ``now + ttl``
    with a left/right order drawn by ``draw`` (True: the stored chosen answer is shown left).
    None when the queue has nothing for them."""
    rules, track = queue_filter(session, namespace, agent, policy)
    where = [*track, PENDING]
    held = _held(session, rules, where, namespace, reviewer, now)
    if held is not None:
        return held
    offset = 0
    query = _candidates(where, namespace, reviewer, now)
    while rows := session.execute(query.offset(offset).limit(PAGE)).all():
        offset += PAGE
        for row in rows:
            pair: PreferencePair = row[0]
            rule = rules_for(rules, pair)
            if int(row[1]) >= rule.reviewers:
                continue
            values: dict[str, Any] = {"reviewer": reviewer, "left_is_chosen": draw(), "reserved_at": now,
                                      "expires_at": now + ttl, "done": False}  # fmt: skip
            if any(_take(session, pair, index, values, now) for index in range(rule.reviewers)):
                return Reserved(pair, values["left_is_chosen"], values["expires_at"], rule)
    return None


def release(session: Session, namespace: str, reviewer: str, pair_id: str, now: datetime) -> bool:
    """Give back (skip) the reviewer's reservation of an item; False when they held no live one. The slot
    is free for the next reviewer at once; this reviewer is not offered the item again."""
    statement = update(ReviewSlot).where(
        ReviewSlot.namespace == namespace, ReviewSlot.pair_id == pair_id,
        ReviewSlot.reviewer == reviewer, ReviewSlot.done.is_(False), ReviewSlot.expires_at > now,
    )  # fmt: skip
    # Expired before it was reserved: free for the next reviewer as a lapsed reservation is, and the
    # mark of a skip (``_candidates`` does not offer the item to this reviewer again).
    skipped = statement.values(reserved_at=now, expires_at=now - timedelta(microseconds=1))
    return session.execute(skipped.returning(ReviewSlot.slot)).first() is not None
