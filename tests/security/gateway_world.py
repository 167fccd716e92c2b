"""The security tier's world: a real control plane, a real gateway process per store, every kind of caller.

``identities`` mints one credential per kind of caller: none, an expired Kaizen token, a token signed
with the wrong key, an agent of team-a, the same agent in team-b, a team-a reviewer, the operator
role, two feedback tokens (the embeddable widget's: one for the agent and its route, one for
another agent), and two ServiceAccounts of team-a whose tokens the API server minted for the gateway's audience.
One is bound to every gateway verb in team-a and the other to nothing. The gateway checks the
ServiceAccounts with real TokenReviews and SubjectAccessReviews.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from controllers.api.identity import Role
from controllers.decisions.access import API_GROUP, Action
from controllers.gateway import auth
from controllers.store.experiments import record_assignments
from controllers.store.models import Annotation, Feedback, IdempotencyKey, Policy, PreferencePair, Route, Run
from controllers.store.review_models import ReviewSettings, ReviewSlot, ReviewVerdict
from devstack import identities
from devstack.controlplane import ControlPlane
from devstack.gateway import GatewayProcess

SECRET = "security-tier-secret-0123456789"
NAMESPACE, ELSEWHERE = "team-a", "team-b"
AGENT = "coder"
# Requests the router recorded for the seeded route, one per namespace, that no run names: feedback
# may rate them by their request id alone.
REQUEST, REQUEST_ELSEWHERE = "seed-request", "seed-request-elsewhere"
UNAUTHENTICATED = ("none", "expired", "wrong-key")
IDENTITIES = (
    *UNAUTHENTICATED, "agent", "agent-elsewhere", "reviewer", "operator", "sa-granted", "sa-plain",
    "feedback", "feedback-other",
)  # fmt: skip


def everything_role() -> dict[str, Any]:
    """A ClusterRole with every gateway verb, to bind a ServiceAccount to in one namespace."""
    verbs: dict[str, set[str]] = {}
    for action in Action:
        verbs.setdefault(action.resource, set()).add(action.verb)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "security-tier-every-gateway-verb"},
        "rules": [
            {"apiGroups": [API_GROUP], "resources": [resource], "verbs": sorted(found)}
            for resource, found in sorted(verbs.items())
        ],
    }


def grant_everything(plane: ControlPlane, namespace: str, account: str) -> None:
    role = everything_role()
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{account}-everything", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }
    plane.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]})
    )


def identities_for(plane: ControlPlane) -> dict[str, dict[str, str]]:
    """Authorization headers by caller name ("none" sends none)."""
    granted = identities.service_account_token(plane, NAMESPACE, "granted", seconds=3600)
    grant_everything(plane, NAMESPACE, "granted")
    plain = identities.service_account_token(plane, NAMESPACE, "plain", seconds=3600)
    tokens = {
        "expired": auth.issue(SECRET, AGENT, -10, namespaces=[NAMESPACE]),
        "wrong-key": auth.issue("not-the-gateway-key-0123456789", AGENT, 3600, namespaces=[NAMESPACE]),
        "agent": auth.issue(SECRET, AGENT, 3600, namespaces=[NAMESPACE]),
        "agent-elsewhere": auth.issue(SECRET, AGENT, 3600, namespaces=[ELSEWHERE]),
        "reviewer": auth.issue(SECRET, "rita", 3600, role=Role.REVIEWER, namespaces=[NAMESPACE]),
        "operator": auth.issue(SECRET, "kaizen-operator", 3600, role=Role.OPERATOR, namespaces=["*"]),
        # The widget's: rates the agent's answers and the requests its route served; and one for another agent.
        "feedback": auth.issue(
            SECRET, "widget-coder", 3600, role=Role.FEEDBACK, namespaces=[NAMESPACE], agents=[AGENT, "seeded"]
        ),
        "feedback-other": auth.issue(
            SECRET, "widget-other", 3600, role=Role.FEEDBACK, namespaces=[NAMESPACE], agents=["someone-else"]
        ),
        "sa-granted": granted,
        "sa-plain": plain,
    }
    return {"none": {}} | {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}


ADMIN = {
    "Authorization": f"Bearer {auth.issue(SECRET, 'seeder', 3600, role=Role.ADMIN, namespaces=[NAMESPACE])}"
}


@dataclass
class World:
    """One gateway on one store, seeded with what the calls act on."""

    gateway: GatewayProcess
    engine: Engine
    upstream_base: str
    callers: dict[str, dict[str, str]]
    pairs: dict[str, str] = field(default_factory=dict)  # caller -> a pending pair of its own to review
    counter: int = 0

    def unique(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def call(self, method: str, path: str, caller: str, body: Any = None, **headers: str) -> httpx.Response:
        sent = {**self.callers[caller], **headers}
        return httpx.request(method, f"{self.gateway.url}{path}", json=body, headers=sent, timeout=30)

    def seed(self) -> None:
        runs = [{"id": "seed-run", "agent": AGENT, "taskId": "t", "prompt": "p", "output": "o"}]
        self._ok("POST", "/v1/runs/batch", {"namespace": NAMESPACE, "runs": runs})
        pairs = [
            {"agent": AGENT, "prompt": f"review me {caller}", "chosen": "good", "rejected": "bad"}
            for caller in IDENTITIES
        ]
        ids = self._ok("POST", "/v1/pairs/batch", {"namespace": NAMESPACE, "pairs": pairs})["ids"]
        self.pairs = dict(zip(IDENTITIES, ids, strict=True))
        queue = [
            {"agent": AGENT, "prompt": f"queue {i}", "chosen": "good", "rejected": "bad"} for i in range(12)
        ]
        self._ok("POST", "/v1/pairs/batch", {"namespace": NAMESPACE, "pairs": queue})  # for the blind review
        self._ok("PUT", f"/v1/routes/{NAMESPACE}/seeded", route(NAMESPACE, "seeded", self.upstream_base))
        self._ok("PUT", f"/v1/policies/{NAMESPACE}/seeded", {"agent": AGENT})  # the loop dashboard's policy
        with Session(self.engine) as session, session.begin():
            record_assignments(session, [served(NAMESPACE, REQUEST), served(ELSEWHERE, REQUEST_ELSEWHERE)])

    def _ok(self, method: str, path: str, body: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.gateway.url}{path}",
            json=body,
            headers={**ADMIN, "Idempotency-Key": self.unique("seed")},
        )
        assert response.status_code == 200, response.text
        return response.json()

    def written(self) -> dict[str, int]:
        """Row counts of every table a gateway call writes, and how many pairs were reviewed."""
        with self.engine.connect() as connection:
            counts = {
                model.__tablename__: connection.execute(select(func.count()).select_from(model)).scalar_one()
                for model in (
                    Run,
                    Feedback,
                    PreferencePair,
                    Annotation,
                    Policy,
                    Route,
                    IdempotencyKey,
                    ReviewSlot,
                    ReviewVerdict,
                    ReviewSettings,
                )
            }
            counts["reviewed"] = connection.execute(
                text("SELECT count(*) FROM preference_pairs WHERE review_state != 'pending'")
            ).scalar_one()
            counts["rated requests"] = connection.execute(
                text("SELECT count(*) FROM experiment_assignments WHERE rewarded_at IS NOT NULL")
            ).scalar_one()
        return counts


def route(namespace: str, name: str, upstream_base: str) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "name": name,
        "variants": [{"name": "champion", "endpoint": upstream_base, "weight": 100, "champion": True}],
    }


def served(namespace: str, request_id: str) -> dict[str, Any]:
    """The assignment row the router writes for a request its route ``seeded`` served for an experiment."""
    return {
        "namespace": namespace, "request_id": request_id, "created_at": datetime.now(UTC),
        "experiment": f"{namespace}/seeded", "variant": "champion", "served_variant": "champion",
        "unit_hash": "0" * 64, "route": "seeded", "allocation": '{"champion":100}',
    }  # fmt: skip
