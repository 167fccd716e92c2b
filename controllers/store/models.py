"""The experience store's tables as SQLAlchemy 2 typed models.

Identifiers are strings chosen by the writer, never sequences: a run's id comes from the agent (or
from the request's Idempotency-Key and its position in the batch), a pair's id is a hash of its
source and lineage. A retried write therefore lands on the same primary key and is a no-op, which is
what makes ingest idempotent even without the key table.

Every record of experience (runs, feedback, annotations, pairs, assignments) and every policy belongs
to a namespace, and its id is unique only there: keys are (namespace, id), and feedback and
annotations reference their run within their own namespace. Idempotency keys belong to the caller
that used them: (scope, key).

The Alembic migrations in ``migrations/versions`` create exactly these tables; a test compares the
migrated schema with this metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Float, ForeignKeyConstraint, Index, Integer
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import String, Text, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are always timezone-aware UTC in Python, also on SQLite (which drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        # SQLite keeps the wall time and drops the offset, so store the UTC instant on every store.
        # (Out of range in UTC, year 1 at +14:00 say, this raises instead of writing an unreadable row.)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


ID = String(64)
NAME = String(128)
NAMESPACE = String(63)  # a Kubernetes namespace (DNS-1123 label): every record belongs to one
DEFAULT_NAMESPACE = "default"


class Base(DeclarativeBase):
    """Every column names its SQL type explicitly, so the migrations can match it exactly."""


class ReviewState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Run(Base):
    """One agent execution with its quality signals and composite reward."""

    __tablename__ = "runs"

    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    agent: Mapped[str] = mapped_column(NAME)
    role: Mapped[str] = mapped_column(NAME, default="")
    task_id: Mapped[str] = mapped_column(String(256))
    task_family: Mapped[str] = mapped_column(NAME, default="")
    model_variant: Mapped[str] = mapped_column(NAME, default="")
    prompt_variant: Mapped[str] = mapped_column(NAME, default="")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    prompt: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    compile_ok: Mapped[bool | None] = mapped_column(Boolean, default=None)
    tests_passed: Mapped[int | None] = mapped_column(Integer, default=None)
    tests_total: Mapped[int | None] = mapped_column(Integer, default=None)
    lint_errors: Mapped[int | None] = mapped_column(Integer, default=None)
    type_errors: Mapped[int | None] = mapped_column(Integer, default=None)
    schema_errors: Mapped[int | None] = mapped_column(Integer, default=None)
    coverage: Mapped[float | None] = mapped_column(Float, default=None)
    cost_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    human_accepted: Mapped[bool | None] = mapped_column(Boolean, default=None)
    reward: Mapped[float | None] = mapped_column(Float, default=None)
    weights_hash: Mapped[str | None] = mapped_column(String(16), default=None)
    # When the store last wrote anything pair mining reads (the run, its reward, a feedback on it),
    # by the writer's clock. ``createdAt`` is the agent's and may be old; this is what lets a
    # LearningPolicy mine only the tasks that changed since its last mining.
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: datetime.now(UTC))

    __table_args__ = (
        Index("ix_runs_track_task", "namespace", "agent", "role", "task_id", "created_at"),
        Index("ix_runs_request_id", "namespace", "request_id"),
        Index("ix_runs_changed_at", "changed_at"),
    )


def _run_of(table: str) -> ForeignKeyConstraint:
    """A feedback's or annotation's run: the run of that id in the record's own namespace."""
    return ForeignKeyConstraint(
        ["namespace", "run_id"], ["runs.namespace", "runs.id"], ondelete="CASCADE", name=f"fk_{table}_run"
    )


class Feedback(Base):
    """A person's (or a client's) verdict on a run: thumbs, rating, issues, correction, accept/reject.

    Feedback that names a router request no run names yet has no ``run_id`` (revision 0007): it rates
    the request (its assignment) until the first run that names the request id takes it over."""

    __tablename__ = "feedback"

    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    run_id: Mapped[str | None] = mapped_column(ID, index=True, default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)  # the id the feedback named
    author: Mapped[str] = mapped_column(NAME, default="")
    thumbs: Mapped[int | None] = mapped_column(Integer, default=None)
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    correction: Mapped[str | None] = mapped_column(Text, default=None)
    accepted: Mapped[bool | None] = mapped_column(Boolean, default=None)

    __table_args__ = (_run_of("feedback"), Index("ix_feedback_request_id", "namespace", "request_id"))


class Annotation(Base):
    """An item in the annotation queue: a run a person should look at, and what they decided."""

    __tablename__ = "annotations"

    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    run_id: Mapped[str] = mapped_column(ID, index=True)
    state: Mapped[str] = mapped_column(String(16), default=ReviewState.PENDING)
    reason: Mapped[str] = mapped_column(String(512), default="")
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    reviewer: Mapped[str] = mapped_column(NAME, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    __table_args__ = (_run_of("annotations"),)


class PreferencePair(Base):
    """A prompt with a chosen and a rejected answer, where it came from and whether it may train."""

    __tablename__ = "preference_pairs"

    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    agent: Mapped[str] = mapped_column(NAME, default="")
    role: Mapped[str] = mapped_column(NAME, default="")
    task_family: Mapped[str] = mapped_column(NAME, default="")
    prompt: Mapped[str] = mapped_column(Text)
    chosen: Mapped[str] = mapped_column(Text)
    rejected: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))  # a controllers.data.pairs.PairSource
    margin: Mapped[float | None] = mapped_column(Float, default=None)
    review_state: Mapped[str] = mapped_column(String(16), default=ReviewState.PENDING)
    chosen_run_id: Mapped[str | None] = mapped_column(ID, default=None)
    rejected_run_id: Mapped[str | None] = mapped_column(ID, default=None)
    judge_model: Mapped[str | None] = mapped_column(String(256), default=None)
    judge_rubric: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        Index("ix_pairs_track_state", "namespace", "agent", "role", "review_state", "created_at"),
    )


class Assignment(Base):
    """Which variant served a request (the router writes these; feedback finds its variant here)."""

    __tablename__ = "experiment_assignments"

    # The namespace of the route (and Experiment) that served the request; its runs name the same one.
    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    experiment: Mapped[str] = mapped_column(String(253), index=True)
    variant: Mapped[str] = mapped_column(String(63))
    unit_hash: Mapped[str] = mapped_column(String(64))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    # ``variant`` is what the hash (or the pin) chose; ``served_variant`` answered the request. They
    # differ only on a fallback, where ``error_message`` says why the assigned variant failed.
    served_variant: Mapped[str] = mapped_column(String(63))
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[bool] = mapped_column(Boolean, default=False)
    error_message: Mapped[str | None] = mapped_column(String(512), default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    cost_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    # The weights the router assigned this request by (``allocation_text``); NULL on rows written
    # before revision 0006, which the sequential tests leave out.
    allocation: Mapped[str | None] = mapped_column(String(1024), default=None)
    # Revision 0007: the route that served it (whose ``routes/use`` lets a caller rate the request), and
    # the verdict of feedback naming only the request, with the reward it gives and when, which count
    # for the experiment while no run names the request (``experiments.REWARD``).
    route: Mapped[str | None] = mapped_column(String(253), default=None)
    human_accepted: Mapped[bool | None] = mapped_column(Boolean, default=None)
    reward: Mapped[float | None] = mapped_column(Float, default=None)
    rewarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Route(Base):
    """What the router serves at ``/openai/<namespace>/<name>``: a RouteConfig and its version.

    ``version`` grows by one whenever the config changes (``config_hash`` tells), so every gateway
    replica can find changes with a cheap scan of (namespace, name, version).
    """

    __tablename__ = "routes"

    namespace: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    config_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DatasetSnapshot(Base):
    """An exported training snapshot, addressed by the hash of its content."""

    __tablename__ = "dataset_snapshots"

    content_hash: Mapped[str] = mapped_column(String(71), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    uri: Mapped[str] = mapped_column(String(1024))
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime())
    train_rows: Mapped[int] = mapped_column(Integer)
    eval_rows: Mapped[int] = mapped_column(Integer)
    split_seed: Mapped[int] = mapped_column(Integer)
    scrubbed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Decision(Base):
    """An audit record of a decision the system made (promotion, rollback, training trigger)."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    subject: Mapped[str] = mapped_column(String(253))
    decision: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Policy(Base):
    """A learning track's store-side settings, synced from its LearningPolicy: matching and reward weights."""

    __tablename__ = "policies"

    namespace: Mapped[str] = mapped_column(NAMESPACE, primary_key=True)
    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    agent: Mapped[str] = mapped_column(NAME, default="")
    role: Mapped[str] = mapped_column(NAME, default="")
    task_family: Mapped[str] = mapped_column(NAME, default="")
    weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # How far pair mining got: the settings it mined with (a hash) and the changedAt of runs it has
    # seen up to. Another mining with the same settings reads only the tasks changed since.
    mined_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    mined_through: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class IdempotencyKey(Base):
    """The first response to a write, so that a replay with the same key returns it unchanged.

    Keys are the caller's own: ``scope`` is who wrote (the authenticated subject), so two callers that
    happen to pick the same key never see each other's responses."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
