"""People's reviews of mined pairs and agents' annotations: what waits for a decision, and applying one.

A snapshot of a policy that requires review exports only approved pairs; rejected ones never train.
The HTTP shape of the queue is the gateway's (``controllers.gateway.review_views``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controllers.store.ingest import UnknownReference
from controllers.store.models import Annotation, PreferencePair, ReviewState


@dataclass(frozen=True)
class PendingReviews:
    pairs: Sequence[PreferencePair]
    annotations: Sequence[Annotation]


def _within(model: type[PreferencePair] | type[Annotation], namespaces: Collection[str] | None) -> list[Any]:
    return [] if namespaces is None else [model.namespace.in_(list(namespaces))]


def apply_reviews(
    session: Session, reviews: list[dict[str, Any]], namespaces: Collection[str] | None = None
) -> dict[str, Any]:
    """Approve or reject pairs and annotations of ``namespaces`` (None: of every namespace), or of the
    one a review names; an id not found there raises UnknownReference naming the item."""
    now = datetime.now(UTC)
    updated = 0
    for index, review in enumerate(reviews):
        model = PreferencePair if review["kind"] == "pair" else Annotation
        state_column = PreferencePair.review_state if model is PreferencePair else Annotation.state
        values: dict[str, Any] = {state_column.key: review["decision"]}
        if model is Annotation:
            values.update(reviewer=review.get("reviewer", ""), note=review.get("note", ""), reviewed_at=now)
        where = [model.id == review["id"], *_within(model, namespaces)]
        if review.get("namespace"):
            where.append(model.namespace == review["namespace"])
        result = session.execute(update(model).where(*where).values(**values))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UnknownReference(f"reviews[{index}].id", review["id"])
        updated += 1
    return {"updated": updated}


def pending_reviews(
    session: Session, limit: int = 50, agent: str | None = None, namespaces: Collection[str] | None = None
) -> PendingReviews:
    """Pending pairs (of ``agent``'s, when given) and annotations of ``namespaces`` (None: of every
    namespace), oldest first, at most ``limit`` each."""
    pairs = select(PreferencePair).where(
        PreferencePair.review_state == ReviewState.PENDING.value, *_within(PreferencePair, namespaces)
    )
    if agent:
        pairs = pairs.where(PreferencePair.agent == agent)
    notes = select(Annotation).where(
        Annotation.state == ReviewState.PENDING.value, *_within(Annotation, namespaces)
    )
    return PendingReviews(
        session.execute(pairs.order_by(PreferencePair.created_at).limit(limit)).scalars().all(),
        session.execute(notes.order_by(Annotation.created_at).limit(limit)).scalars().all(),
    )
