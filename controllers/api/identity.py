"""Who is calling the gateway: a role, the namespaces and agents it may act for, and where it came from.

Two kinds of callers reach the gateway. Agents outside the cluster carry a Kaizen token, which names
a ``Role`` and the namespaces and agents it is good for. Anything inside the cluster (the operator,
an in-cluster agent, a reviewer's tool) can instead send its Kubernetes ServiceAccount token. The
API server vouches for that one, and its RBAC decides what the account may do (``role`` is None).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ANY = "*"  # in ``namespaces`` or ``agents``: every one


class Role(StrEnum):
    AGENT = "agent"  # writes its own agents' runs, feedback and pairs; calls its namespaces' routes
    REVIEWER = "reviewer"  # reads the review queue of its namespaces; posts reviews and corrections
    OPERATOR = "operator"  # writes routes and policies
    ADMIN = "admin"  # everything
    # Only rates its agents' answers: the embeddable widget's token, readable by anyone who opens the
    # page it sits in, so it must be worth nothing else (no reads, no runs, no routes).
    FEEDBACK = "feedback"


@dataclass(frozen=True)
class Principal:
    subject: str  # the agent or person (Kaizen token), or the Kubernetes user name
    role: Role | None  # None: a Kubernetes identity, authorized by SubjectAccessReview
    namespaces: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    expires_at: float | None = None
    token_id: str = ""  # a Kaizen token's id, what a revocation names
    groups: tuple[str, ...] = ()  # a Kubernetes identity's groups
    uid: str = ""  # a Kubernetes identity's uid

    @property
    def from_kubernetes(self) -> bool:
        return self.role is None

    @property
    def scope(self) -> str:
        """What idempotency keys and derived record ids are kept apart by: one caller's space."""
        return f"{'k8s' if self.from_kubernetes else 'kaizen'}:{self.subject}"

    def covers_namespace(self, namespace: str) -> bool:
        return ANY in self.namespaces or namespace in self.namespaces

    def covers_agent(self, agent: str) -> bool:
        return ANY in self.agents or agent in self.agents
