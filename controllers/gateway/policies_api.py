"""``PUT /v1/policies/{namespace}/{name}``: a LearningPolicy's reward weights and review settings
(``spec.review``: reviewers per item, guidelines), synced into the store.

The store keeps each policy's matching and weights beside the runs they score, so a change
recomputes at once the stored rewards of the runs it matches, before or after (the answer says how
many). The namespace and name are the LearningPolicy's. Writing takes ``policies/update`` in the
namespace: the operator's identity, or an admin's.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from controllers.decisions.access import Action
from controllers.gateway.context import Caller, Key, Shared, authorize
from controllers.gateway.errors import ApiError
from controllers.gateway.schemas import PolicyIn
from controllers.gateway.writes import idempotent_write
from controllers.store import policies
from controllers.store.review_stats import upsert_review_settings

router = APIRouter(prefix="/v1/policies", tags=["policies"])
OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _policy_name(name: str) -> str:
    if not OBJECT_NAME.fullmatch(name):
        raise ApiError(
            422, "policy name must be a Kubernetes object name", [{"field": "name", "message": "invalid"}]
        )
    return name


Namespace = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", max_length=63)]


@router.put("/{namespace}/{name}")
async def put_policy(
    caller: Caller,
    namespace: Namespace,
    name: Annotated[str, Depends(_policy_name)],
    policy: PolicyIn,
    key: Key,
    shared: Shared,
) -> JSONResponse:
    await authorize(shared, caller, Action.WRITE_POLICIES, namespace, name)
    weights = policy.reward.model_dump(by_alias=True)

    def write(session: Session) -> dict[str, Any]:
        recomputed = policies.upsert_policy(
            session, namespace, name, policy.agent, policy.role, policy.task_family, weights
        )
        review = policy.review
        upsert_review_settings(
            session, namespace, name, review.reviewers_per_item, review.guidelines, datetime.now(UTC)
        )
        return {"namespace": namespace, "name": name, "rewardsRecomputed": recomputed}

    return await run_in_threadpool(
        idempotent_write, shared, "policies", key, policy, write, scope=caller.scope
    )
