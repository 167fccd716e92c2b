"""Batch writes into the store, each exactly once per Idempotency-Key.

A write runs in one transaction that first claims its key (``INSERT … ON CONFLICT DO NOTHING``),
then inserts the rows, then stores the response under the key. A replay finds the key and returns
the stored response; a concurrent duplicate blocks on the key's row until the first commits. If the
database dies midway the transaction rolls back whole — the key included — so a retry starts over.
Rows carry writer-chosen ids, so even a replay without the key table could not duplicate them.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Insert

from controllers.data.reward import RewardWeights, Signals, compute_reward
from controllers.store.db import transaction
from controllers.store.models import (
    Annotation,
    Feedback,
    IdempotencyKey,
    Policy,
    PreferencePair,
    ReviewState,
    Run,
)

ID_NAMESPACE = uuid.UUID("6b61697a-656e-4b1d-8000-000000000001")

# The columns a policy's track matches on, in (agent, role, task family) order.
TRACK_COLUMNS = (Run.agent, Run.role, Run.task_family)


class KeyConflict(Exception):
    """The Idempotency-Key was used before with a different request."""


class UnknownReference(Exception):
    """A record names a run (or request) the store does not have."""

    def __init__(self, field: str, value: str) -> None:
        super().__init__(f"{field}: no run with id or request id {value!r}")
        self.field = field


@dataclass(frozen=True)
class WriteResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def request_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def derived_id(key: str, kind: str, index: int) -> str:
    """The id of the index-th record of a batch sent with ``key``: the same on every retry."""
    return uuid.uuid5(ID_NAMESPACE, f"{key}/{kind}/{index}").hex


def insert_ignoring_duplicates(session: Session, table: Table | type[Any]) -> Insert:
    target = table.__table__ if hasattr(table, "__table__") else table
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement: Insert = module.insert(target).on_conflict_do_nothing()
    return statement


def idempotent_write(
    factory: sessionmaker[Session],
    *,
    key: str,
    endpoint: str,
    payload_hash: str,
    write: Callable[[Session], dict[str, Any]],
) -> WriteResult:
    """Run ``write`` once per key; later calls with the key get the first response back."""
    now = datetime.now(UTC)
    with transaction(factory) as session:
        claim = insert_ignoring_duplicates(session, IdempotencyKey).values(
            key=key, endpoint=endpoint, request_hash=payload_hash, status_code=0, response={}, created_at=now
        )
        claimed = session.execute(claim.returning(IdempotencyKey.key)).first()
        if claimed is None:
            first = session.execute(select(IdempotencyKey).where(IdempotencyKey.key == key)).scalar_one()
            if first.request_hash != payload_hash or first.endpoint != endpoint:
                raise KeyConflict(
                    f"Idempotency-Key {key!r} was already used for a different request to {first.endpoint}"
                )
            return WriteResult(first.status_code, first.response, replayed=True)
        body = write(session)
        session.execute(
            update(IdempotencyKey).where(IdempotencyKey.key == key).values(status_code=200, response=body)
        )
        return WriteResult(200, body, replayed=False)


# -- runs ---------------------------------------------------------------------------------------------


def weights_for(policies: Sequence[Policy], agent: str, role: str, task_family: str) -> RewardWeights:
    """The most specific policy whose set fields all match the run; defaults when none does."""
    best: tuple[int, Policy] | None = None
    for policy in policies:
        fields = [(policy.agent, agent), (policy.role, role), (policy.task_family, task_family)]
        if all(not wanted or wanted == actual for wanted, actual in fields):
            specificity = sum(1 for wanted, _ in fields if wanted)
            if best is None or specificity > best[0]:
                best = (specificity, policy)
    return RewardWeights.from_camel(best[1].weights) if best else RewardWeights()


def _signals(row: dict[str, Any]) -> Signals:
    return Signals(
        compile_ok=row.get("compile_ok"),
        tests_passed=row.get("tests_passed"),
        tests_total=row.get("tests_total"),
        lint_errors=row.get("lint_errors"),
        type_errors=row.get("type_errors"),
        schema_errors=row.get("schema_errors"),
        human_accepted=row.get("human_accepted"),
    )


def insert_runs(session: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Insert runs (column dicts with ids), computing each reward with its policy's weights."""
    policies = session.execute(select(Policy)).scalars().all()
    weights_by_track: dict[tuple[str, str, str], tuple[RewardWeights, str]] = {}
    now = datetime.now(UTC)
    for row in rows:
        row["changed_at"] = now
        track = (row["agent"], row.get("role", ""), row.get("task_family", ""))
        if track not in weights_by_track:
            weights = weights_for(policies, *track)
            weights_by_track[track] = (weights, weights.digest())
        weights, digest = weights_by_track[track]
        row["reward"] = compute_reward(_signals(row), weights)
        row["weights_hash"] = digest
    inserted = _insert_many(session, Run, rows)
    return {"accepted": len(rows), "inserted": inserted, "ids": [r["id"] for r in rows]}


def _insert_many(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping ids that exist; returns how many were new.

    One executemany with one statement text (no RETURNING): the driver prepares it once and, with
    psycopg 3, pipelines the rows — a multi-row VALUES text would be re-parsed for every batch.
    """
    if not rows:
        return 0
    # One executemany needs one shape: every row gets every column any row has, with the column's
    # scalar default (or NULL) where a row left it out.
    keys = set().union(*(row.keys() for row in rows))
    columns = model.__table__.columns
    fill = {
        k: (
            columns[k].default.arg
            if columns[k].default is not None and not callable(columns[k].default.arg)
            else None
        )
        for k in keys
    }
    rows = [row if len(row) == len(keys) else {**fill, **row} for row in rows]
    # Drivers do not agree on executemany's rowcount, so count what was new from the ids. (A
    # concurrent writer of the same id can make this an overcount; the rows themselves stay exact.)
    key = model.__mapper__.primary_key[0]
    existing: set[Any] = set(
        session.execute(select(key).where(key.in_([row[key.key] for row in rows]))).scalars()
    )
    session.execute(insert_ignoring_duplicates(session, model), rows)
    return len({row[key.key] for row in rows} - existing)


def recompute_rewards(
    session: Session,
    run_ids: Iterable[str] | None = None,
    tracks: Sequence[tuple[str, str, str]] | None = None,
) -> int:
    """Recompute stored rewards with the current policy weights — of all runs, of some (``run_ids``),
    or of the runs a policy with one of ``tracks`` (agent, role, task family; empty matches any)
    would match. Returns the rows changed."""
    query = select(Run)
    if run_ids is not None:
        query = query.where(Run.id.in_(list(run_ids)))
    if tracks is not None:
        matches: list[ColumnElement[bool]] = []
        for track in tracks:
            parts = [column == value for column, value in zip(TRACK_COLUMNS, track, strict=True) if value]
            if not parts:  # a policy for everything: every run may change
                matches = []
                break
            matches.append(and_(*parts))
        if matches:
            query = query.where(or_(*matches))
    policies: Sequence[Policy] | None = None  # read once, and only when there is a run to weigh
    changed = 0
    now = datetime.now(UTC)
    for run in session.execute(query.execution_options(yield_per=1000)).scalars():
        if policies is None:
            policies = session.execute(select(Policy)).scalars().all()
        weights = weights_for(policies, run.agent, run.role, run.task_family)
        reward = compute_reward(_signals(run.__dict__), weights)
        if reward != run.reward or run.weights_hash != weights.digest():
            run.reward, run.weights_hash, run.changed_at = reward, weights.digest(), now
            changed += 1
    return changed


def upsert_policy(
    session: Session, name: str, agent: str, role: str, task_family: str, weights: dict[str, float]
) -> int:
    """Create or update a policy's matching and weights, then recompute the rewards it affects."""
    RewardWeights.from_camel(weights)  # validates
    policy = session.get(Policy, name)
    now = datetime.now(UTC)
    # Only runs this policy matches, before or after the change, can change their reward.
    tracks = [(agent, role, task_family)]
    if policy is not None:
        tracks.append((policy.agent, policy.role, policy.task_family))
    if policy is None:
        session.add(
            Policy(
                name=name, agent=agent, role=role, task_family=task_family, weights=weights, updated_at=now
            )
        )
    elif (policy.agent, policy.role, policy.task_family, policy.weights) != (
        agent,
        role,
        task_family,
        weights,
    ):
        policy.agent, policy.role, policy.task_family, policy.weights, policy.updated_at = (
            agent,
            role,
            task_family,
            weights,
            now,
        )
    else:
        return 0
    session.flush()
    return recompute_rewards(session, tracks=tracks)


# -- feedback, pairs, annotations, reviews ---------------------------------------------------------


def resolve_runs(session: Session, references: list[tuple[str, str | None, str | None]]) -> dict[str, str]:
    """Map each (field, run_id, request_id) to a run id; raises UnknownReference naming the field."""
    run_ids = {r for _, r, _ in references if r}
    request_ids = {q for _, r, q in references if q and not r}
    known = set(session.execute(select(Run.id).where(Run.id.in_(run_ids))).scalars()) if run_ids else set()
    by_request = (
        dict(session.execute(select(Run.request_id, Run.id).where(Run.request_id.in_(request_ids))).all())
        if request_ids
        else {}
    )
    resolved = {}
    for field, run_id, request_id in references:
        if run_id:
            if run_id not in known:
                raise UnknownReference(field, run_id)
            resolved[field] = run_id
        elif request_id:
            if request_id not in by_request:
                raise UnknownReference(field, request_id)
            resolved[field] = str(by_request[request_id])
    return resolved


def human_verdict(row: dict[str, Any]) -> bool | None:
    """What feedback says about acceptance: explicit accept/reject, else thumbs, else a rating of 4+."""
    if row.get("accepted") is not None:
        return bool(row["accepted"])
    if row.get("thumbs"):
        return bool(row["thumbs"] > 0)
    if row.get("rating") is not None:
        return bool(row["rating"] >= 4)
    return None


def insert_feedback(session: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
    inserted = _insert_many(session, Feedback, rows)
    # Re-applying a verdict that is already stored changes nothing, so replays stay harmless.
    verdicts = {row["run_id"]: v for row in rows if (v := human_verdict(row)) is not None}
    for run_id, verdict in verdicts.items():
        session.execute(update(Run).where(Run.id == run_id).values(human_accepted=verdict))
    # A correction is a pair to mine, a verdict may move the reward: the runs have changed for mining.
    touched = sorted({row["run_id"] for row in rows})
    session.execute(update(Run).where(Run.id.in_(touched)).values(changed_at=datetime.now(UTC)))
    recompute_rewards(session, verdicts.keys())
    return {"accepted": len(rows), "inserted": inserted, "ids": [r["id"] for r in rows]}


def pair_id(
    source: str,
    prompt: str,
    chosen: str,
    rejected: str,
    chosen_run: str | None,
    rejected_run: str | None,
    track: tuple[str, str, str] = ("", "", ""),
) -> str:
    material = [source, prompt, chosen, rejected, chosen_run, rejected_run]
    if chosen_run is None and rejected_run is None:
        # A pair without runs is only its text: two agents posting the same text are two pairs, one
        # per track, or the second agent's would be dropped as a duplicate of the first's.
        material += list(track)
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()[:32]


def insert_pairs(session: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
    for row in rows:
        row.setdefault("review_state", ReviewState.PENDING.value)
        row["id"] = pair_id(
            row["source"],
            row["prompt"],
            row["chosen"],
            row["rejected"],
            row.get("chosen_run_id"),
            row.get("rejected_run_id"),
            (row.get("agent") or "", row.get("role") or "", row.get("task_family") or ""),
        )
    inserted = _insert_many(session, PreferencePair, rows)
    return {"accepted": len(rows), "inserted": inserted, "ids": [r["id"] for r in rows]}


def insert_annotations(session: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
    inserted = _insert_many(session, Annotation, rows)
    return {"accepted": len(rows), "inserted": inserted, "ids": [r["id"] for r in rows]}


def apply_reviews(session: Session, reviews: list[dict[str, Any]]) -> dict[str, Any]:
    """Approve or reject pairs and annotations; unknown ids raise UnknownReference naming the item."""
    now = datetime.now(UTC)
    updated = 0
    for index, review in enumerate(reviews):
        model = PreferencePair if review["kind"] == "pair" else Annotation
        state_column = PreferencePair.review_state if model is PreferencePair else Annotation.state
        values: dict[str, Any] = {state_column.key: review["decision"]}
        if model is Annotation:
            values.update(reviewer=review.get("reviewer", ""), note=review.get("note", ""), reviewed_at=now)
        result = session.execute(update(model).where(model.id == review["id"]).values(**values))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UnknownReference(f"reviews[{index}].id", review["id"])
        updated += 1
    return {"updated": updated}


def review_queue(session: Session, limit: int = 50, agent: str | None = None) -> dict[str, Any]:
    """Pending pairs and annotations, oldest first."""
    pairs = select(PreferencePair).where(PreferencePair.review_state == ReviewState.PENDING.value)
    if agent:
        pairs = pairs.where(PreferencePair.agent == agent)
    pending_pairs = session.execute(pairs.order_by(PreferencePair.created_at).limit(limit)).scalars().all()
    notes = select(Annotation).where(Annotation.state == ReviewState.PENDING.value)
    pending_notes = session.execute(notes.order_by(Annotation.created_at).limit(limit)).scalars().all()
    return {
        "pairs": [
            {
                "id": p.id,
                "source": p.source,
                "prompt": p.prompt,
                "chosen": p.chosen,
                "rejected": p.rejected,
                "margin": p.margin,
                "createdAt": p.created_at.isoformat(),
            }
            for p in pending_pairs
        ],
        "annotations": [
            {
                "id": a.id,
                "runId": a.run_id,
                "reason": a.reason,
                "labels": a.labels,
                "createdAt": a.created_at.isoformat(),
            }
            for a in pending_notes
        ],
    }
