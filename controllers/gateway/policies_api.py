"""``PUT /v1/policies/{name}``: the operator syncs a LearningPolicy's reward weights into the store.

The store keeps each policy's matching and weights beside the runs they score, so a change
recomputes at once the stored rewards of the runs it matches, before or after (the answer says how
many). The name must be a Kubernetes object name: it is the LearningPolicy's.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

import re
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from controllers.gateway.context import Caller, Key, Shared
from controllers.gateway.errors import ApiError
from controllers.gateway.schemas import PolicyIn
from controllers.gateway.writes import idempotent_write
from controllers.store import policies

router = APIRouter(prefix="/v1/policies", tags=["policies"])
OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _policy_name(name: str) -> str:
    if not OBJECT_NAME.fullmatch(name):
        raise ApiError(
            422, "policy name must be a Kubernetes object name", [{"field": "name", "message": "invalid"}]
        )
    return name


@router.put("/{name}")
def put_policy(
    _: Caller, name: Annotated[str, Depends(_policy_name)], policy: PolicyIn, key: Key, shared: Shared
) -> JSONResponse:
    weights = policy.reward.model_dump(by_alias=True)
    return idempotent_write(
        shared,
        "policies",
        key,
        policy,
        lambda session: {
            "name": name,
            "rewardsRecomputed": policies.upsert_policy(
                session, name, policy.agent, policy.role, policy.task_family, weights
            ),
        },
    )
