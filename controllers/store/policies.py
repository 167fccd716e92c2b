"""Reward policies in the store: the row the operator upserts for each LearningPolicy, and the rewards
its weights give the runs of its track.

A run's reward is computed when it is written, with the weights of the most specific policy of its
own namespace matching it (``controllers.data.reward``), and stored with the digest of those weights. A changed policy, or a
human verdict that arrives later, recomputes the rewards it affects — and only those.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from controllers.data.reward import RewardWeights, compute_reward, signals_of, weights_for
from controllers.store.models import Policy, Run
from controllers.store.request_feedback import reweigh_requests
from controllers.store.tracks import Track


def _policies(session: Session, namespace: str) -> Sequence[Policy]:
    return session.execute(select(Policy).where(Policy.namespace == namespace)).scalars().all()


def weigh_new_runs(session: Session, namespace: str, rows: Iterable[dict[str, Any]]) -> None:
    """Set each run row's ``reward`` and ``weights_hash`` from its policy's weights (``namespace``'s)."""
    policies = _policies(session, namespace)
    weights_by_track: dict[tuple[str, str, str], tuple[RewardWeights, str]] = {}
    for row in rows:
        track = (row["agent"], row.get("role", ""), row.get("task_family", ""))
        if track not in weights_by_track:
            weights = weights_for(policies, *track)
            weights_by_track[track] = (weights, weights.digest())
        weights, digest = weights_by_track[track]
        row["reward"] = compute_reward(signals_of(row), weights)
        row["weights_hash"] = digest


def _any_track(tracks: Sequence[tuple[str, str, str]]) -> ColumnElement[bool] | None:
    """Runs that a policy with one of ``tracks`` matches; None when one of them matches every run."""
    matches = []
    for track in tracks:
        if not any(track):  # a policy for everything: every run may change
            return None
        matches.append(and_(*Track(*track).fields(Run)))
    return or_(*matches) if matches else None


def recompute_rewards(
    session: Session,
    namespace: str,
    run_ids: Iterable[str] | None = None,
    tracks: Sequence[tuple[str, str, str]] | None = None,
) -> int:
    """Recompute stored rewards of ``namespace`` with its current policy weights — of all its runs, of
    some (``run_ids``), or of the runs a policy with one of ``tracks`` (agent, role, task family;
    empty matches any) would match. Returns the rows changed."""
    query = select(Run).where(Run.namespace == namespace)
    if run_ids is not None:
        query = query.where(Run.id.in_(list(run_ids)))
    if tracks is not None and (matching := _any_track(tracks)) is not None:
        query = query.where(matching)
    policies: Sequence[Policy] | None = None  # read once, and only when there is a run to weigh
    changed = 0
    now = datetime.now(UTC)
    for run in session.execute(query.execution_options(yield_per=1000)).scalars():
        if policies is None:
            policies = _policies(session, namespace)
        weights = weights_for(policies, run.agent, run.role, run.task_family)
        reward = compute_reward(signals_of(run.__dict__), weights)
        if reward != run.reward or run.weights_hash != weights.digest():
            run.reward, run.weights_hash, run.changed_at = reward, weights.digest(), now
            changed += 1
    return changed


def upsert_policy(
    session: Session,
    namespace: str,
    name: str,
    agent: str,
    role: str,
    task_family: str,
    weights: dict[str, float],
) -> int:
    """Create or update a policy's matching and weights, then recompute the rewards it affects (of
    its namespace's runs only, and of the requests its route served that only feedback rated)."""
    RewardWeights.from_camel(weights)  # validates
    policy = session.get(Policy, (namespace, name))
    now = datetime.now(UTC)
    # Only runs this policy matches, before or after the change, can change their reward.
    tracks = [(agent, role, task_family)]
    if policy is None:
        session.add(
            Policy(
                namespace=namespace,
                name=name,
                agent=agent,
                role=role,
                task_family=task_family,
                weights=weights,
                updated_at=now,
            )
        )
    elif (policy.agent, policy.role, policy.task_family, policy.weights) != (
        agent,
        role,
        task_family,
        weights,
    ):
        tracks.append((policy.agent, policy.role, policy.task_family))
        policy.agent, policy.role, policy.task_family = agent, role, task_family
        policy.weights, policy.updated_at = weights, now
    else:
        return 0
    session.flush()
    reweigh_requests(session, namespace, name)  # requests its route served that feedback alone rated
    return recompute_rewards(session, namespace, tracks=tracks)
