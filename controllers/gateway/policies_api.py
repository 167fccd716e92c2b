"""``PUT /v1/policies/{namespace}/{name}``: the operator syncs a LearningPolicy's reward weights into the store.

The store keeps each policy's matching and weights beside the runs they score, so a change
recomputes at once the stored rewards of the runs it matches, before or after (the answer says how
many). The namespace and name must be a Kubernetes namespace and object name: they are the
LearningPolicy's, and its weights score only the runs of its namespace.

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
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _namespace(namespace: str) -> str:
    if not NAMESPACE.fullmatch(namespace):
        raise ApiError(
            422, "namespace must be a DNS-1123 label", [{"field": "namespace", "message": "invalid"}]
        )
    return namespace


def _policy_name(name: str) -> str:
    if not OBJECT_NAME.fullmatch(name):
        raise ApiError(
            422, "policy name must be a Kubernetes object name", [{"field": "name", "message": "invalid"}]
        )
    return name


@router.put("/{namespace}/{name}")
def put_policy(
    caller: Caller,
    namespace: Annotated[str, Depends(_namespace)],
    name: Annotated[str, Depends(_policy_name)],
    policy: PolicyIn,
    key: Key,
    shared: Shared,
) -> JSONResponse:
    weights = policy.reward.model_dump(by_alias=True)
    return idempotent_write(
        shared,
        "policies",
        key,
        policy,
        lambda session: {
            "namespace": namespace,
            "name": name,
            "rewardsRecomputed": policies.upsert_policy(
                session, namespace, name, policy.agent, policy.role, policy.task_family, weights
            ),
        },
        scope=caller.subject,
    )
