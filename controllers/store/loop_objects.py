"""The operator's summaries of Kubernetes objects, kept for the loop dashboard (revision 0010).

One row per object (kind, namespace, name), written by the operator just before it writes the
object's status (``controllers.operator.dispatch``) and read by the gateway's ``loop_view``. What a
summary holds is decided in ``controllers.decisions.loop_summary``. The uid tells a re-created
object from the one before it; ``prune`` drops the rows of objects that are gone.

The table lives on ``models.Base``; the migrations' environment and the schema test import this
module so that it is part of the metadata they compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import String

from controllers.decisions.loop_summary import Summary
from controllers.store.models import NAMESPACE, Base, UTCDateTime

# A row written this recently is kept even when its object is missing from the operator's index:
# the index follows a watch, and an object reconciled by a change handler may be a moment ahead of it.
PRUNE_GRACE = timedelta(minutes=5)


class LoopObject(Base):
    __tablename__ = "loop_objects"
    __table_args__ = (Index("ix_loop_objects_policy", "namespace", "policy"),)

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    uid: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(253))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class Mirrored:
    name: str
    summary: dict[str, Any]
    updated_at: datetime


def upsert(session: Session, summary: Summary, now: datetime) -> None:
    """Keep ``summary`` as the object's row (a second write of the same summary changes nothing)."""
    found = session.get(LoopObject, (summary.kind, summary.namespace, summary.name))
    if found is None:
        session.add(
            LoopObject(
                kind=summary.kind, namespace=summary.namespace, name=summary.name, uid=summary.uid,
                policy=summary.policy, summary=summary.body, updated_at=now,
            )
        )  # fmt: skip
    elif (found.uid, found.policy, found.summary) != (summary.uid, summary.policy, summary.body):
        found.uid, found.policy, found.summary, found.updated_at = (
            summary.uid, summary.policy, summary.body, now,
        )  # fmt: skip


def of_policy(session: Session, namespace: str, policy: str, kind: str) -> list[Mirrored]:
    """The rows of one kind shown on one policy's dashboard, oldest name first."""
    rows = session.scalars(
        select(LoopObject)
        .where(LoopObject.namespace == namespace, LoopObject.policy == policy, LoopObject.kind == kind)
        .order_by(LoopObject.name)
    )
    return [Mirrored(row.name, dict(row.summary), row.updated_at) for row in rows]


def prune(session: Session, kind: str, live_uids: set[str], namespaces: list[str], now: datetime) -> int:
    """Drop the rows of ``kind`` whose object is gone (its uid is not live), past the grace, in
    ``namespaces`` (every namespace when empty); how many."""
    query = select(LoopObject.namespace, LoopObject.name, LoopObject.uid).where(
        LoopObject.kind == kind, LoopObject.updated_at < now - PRUNE_GRACE
    )
    if namespaces:
        query = query.where(LoopObject.namespace.in_(namespaces))
    rows = session.execute(query).all()
    gone = [(namespace, name) for namespace, name, uid in rows if uid not in live_uids]
    for namespace, name in gone:
        session.execute(
            delete(LoopObject).where(
                LoopObject.kind == kind, LoopObject.namespace == namespace, LoopObject.name == name
            )
        )
    return len(gone)
