"""The tables of the blind pairwise review (revision 0009), beside the experience they review.

``review_slots`` are reservations: an item needing N reviewers has slots 0..N-1, and a reviewer
holds one by inserting it (or by taking over one whose reservation expired) — a primary key, not a
lock, decides who got it, the same way on PostgreSQL and SQLite. Each slot keeps the left/right order
the server drew for that reviewer. ``review_verdicts`` hold one verdict per reviewer and item, in
the pair's own terms (``preference``) and as shown (``verdict``). ``review_settings`` carry a
LearningPolicy's ``spec.review`` (reviewers per item, guidelines) beside its ``policies`` row.

These tables live on ``models.Base``; the migrations' environment and the schema test import this
module so that its tables are part of the metadata they compare.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKeyConstraint, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import String, Text

from controllers.store.models import ID, NAMESPACE, Base, UTCDateTime

REVIEWER = String(320)  # the caller's scope: "kaizen:" or "k8s:" and its authenticated subject


def _pair_of(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["namespace", "pair_id"],
        ["preference_pairs.namespace", "preference_pairs.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_pair",
    )


class ReviewSlot(Base):
    """One reviewer's place on one item: reserved until ``expires_at``, or ``done`` with a verdict."""

    __tablename__ = "review_slots"

    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    pair_id: Mapped[str] = mapped_column(ID, primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    reviewer: Mapped[str] = mapped_column(REVIEWER)
    left_is_chosen: Mapped[bool] = mapped_column(Boolean)
    reserved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (_pair_of("review_slots"), Index("ix_review_slots_reviewer", "namespace", "reviewer"))


class ReviewVerdict(Base):
    """A reviewer's verdict on an item, once per reviewer and item."""

    __tablename__ = "review_verdicts"

    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    pair_id: Mapped[str] = mapped_column(ID, primary_key=True)
    reviewer: Mapped[str] = mapped_column(REVIEWER, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    verdict: Mapped[str] = mapped_column(String(16))  # as shown: left, right, tie, bothBad
    preference: Mapped[str] = mapped_column(String(16))  # the pair's terms: chosen, rejected, tie, bothBad
    left_is_chosen: Mapped[bool] = mapped_column(Boolean)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    correction: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (_pair_of("review_verdicts"),)


class ReviewSettings(Base):
    """A LearningPolicy's ``spec.review``: how many reviewers each of its items needs, and guidelines."""

    __tablename__ = "review_settings"

    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    policy: Mapped[str] = mapped_column(String(253), primary_key=True)
    reviewers_per_item: Mapped[int] = mapped_column(Integer, default=1)
    guidelines: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
