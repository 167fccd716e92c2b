"""Who may do what through the gateway: the role table, and the same questions asked of Kubernetes RBAC.

Every gateway call is one ``Action`` on a namespace (and, for experience, on an agent; for routes, on
a route name). A Kaizen token's role answers it from ``GRANTS`` and the token's namespaces and
agents. A ServiceAccount's answer comes from the API server: ``rbac_attributes`` turns the same
question into a SubjectAccessReview on Kaizen's own verbs, so a platform team grants them with the
Roles and RoleBindings they already use, for example::

    - apiGroups: ["gateway.kaizen.dev"]
      resources: ["experience", "feedback"]
      resourceNames: ["agent-coder"]      # optional: only this agent
      verbs: ["create"]

The answer is a reason when refused (it goes into the 403), None when allowed.
"""

from __future__ import annotations

from enum import StrEnum

from controllers.api.identity import Principal, Role

API_GROUP = "gateway.kaizen.dev"


class Action(StrEnum):
    """``<resource>/<verb>`` in Kaizen's RBAC vocabulary."""

    WRITE_EXPERIENCE = "experience/create"  # runs, pairs and annotations of an agent
    WRITE_FEEDBACK = "feedback/create"  # feedback and corrections on an agent's runs
    READ_REVIEWS = "reviews/list"
    WRITE_REVIEWS = "reviews/create"
    READ_ROUTES = "routes/get"
    WRITE_ROUTES = "routes/update"
    CALL_ROUTES = "routes/use"
    WRITE_POLICIES = "policies/update"
    READ_EXPERIMENTS = "experiments/get"  # an experiment's traffic and rewards over time (aggregates)

    @property
    def resource(self) -> str:
        return self.value.split("/")[0]

    @property
    def verb(self) -> str:
        return self.value.split("/")[1]


GRANTS: dict[Role, frozenset[Action]] = {
    Role.AGENT: frozenset({Action.WRITE_EXPERIENCE, Action.WRITE_FEEDBACK, Action.CALL_ROUTES}),
    Role.REVIEWER: frozenset(
        {Action.READ_REVIEWS, Action.WRITE_REVIEWS, Action.WRITE_FEEDBACK, Action.READ_EXPERIMENTS}
    ),
    Role.OPERATOR: frozenset(
        {Action.READ_ROUTES, Action.WRITE_ROUTES, Action.WRITE_POLICIES, Action.READ_EXPERIMENTS}
    ),
    Role.ADMIN: frozenset(Action),
    Role.FEEDBACK: frozenset({Action.WRITE_FEEDBACK}),
}

# Actions whose object is an agent: an agent (or feedback) token may take them only for its own agents.
AGENT_SCOPED = frozenset({Action.WRITE_EXPERIENCE, Action.WRITE_FEEDBACK})
# Roles whose token names the agents it acts for (``Principal.agents``); the others act for any agent.
SCOPED_ROLES = frozenset({Role.AGENT, Role.FEEDBACK})


def request_rating_action(principal: Principal) -> Action:
    """What rating a request no run names yet (it names a route, no agent) asks for on that route.

    Whoever may use a route may rate what it served (``routes/use``). A feedback token may not call
    routes (it sits in a public page: it must not spend model calls), so it asks ``feedback/create``
    on the route's name instead, which its agent list must name (``kaizen token create --role
    feedback --agent <agent> --agent <route>``)."""
    return Action.WRITE_FEEDBACK if principal.role is Role.FEEDBACK else Action.CALL_ROUTES


def role_refusal(
    principal: Principal, action: Action, namespace: str, agent: str | None = None
) -> str | None:
    """Why a Kaizen token may not take ``action`` in ``namespace`` (on ``agent``); None if it may."""
    role = principal.role
    if role is None:
        return f"{principal.subject} is a Kubernetes identity; its RBAC decides"
    if action not in GRANTS[role]:
        allowed = sorted(r.value for r, actions in GRANTS.items() if action in actions)
        return f"role {role.value} may not {action.verb} {action.resource}; that needs role {' or '.join(allowed)}"
    if not principal.covers_namespace(namespace):
        return f"{principal.subject} may not act in namespace {namespace!r} (its token covers {_listed(principal.namespaces)})"
    if (
        role in SCOPED_ROLES
        and action in AGENT_SCOPED
        and agent is not None
        and not principal.covers_agent(agent)
    ):
        what = f"rate answers of {agent!r}" if role is Role.FEEDBACK else f"write for agent {agent!r}"
        return f"{principal.subject} may not {what} (its token covers {_listed(principal.agents)})"
    return None


def rbac_attributes(action: Action, namespace: str, name: str | None = None) -> dict[str, str]:
    """The SubjectAccessReview ``resourceAttributes`` that ask Kubernetes RBAC the same question."""
    attributes = {
        "group": API_GROUP,
        "resource": action.resource,
        "verb": action.verb,
        "namespace": namespace,
    }
    if name:
        attributes["name"] = name
    return attributes


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values) if values else "none"
