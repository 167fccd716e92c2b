"""The role table: what each Kaizen role may do, where, and for which agent; and its RBAC translation."""

from __future__ import annotations

import pytest

from controllers.api.identity import ANY, Principal, Role
from controllers.decisions.access import Action, rbac_attributes, request_rating_action, role_refusal

AGENT = Principal("coder", Role.AGENT, ("team-a",), ("coder",))
REVIEWER = Principal("rita", Role.REVIEWER, ("team-a",))
OPERATOR = Principal("op", Role.OPERATOR, (ANY,))
ADMIN = Principal("root", Role.ADMIN, ("team-a",))
WIDGET = Principal("widget-coder", Role.FEEDBACK, ("team-a",), ("coder", "coder-route"))

# (principal, action, namespace, agent, allowed) written from the trust model, not from GRANTS.
CASES = [
    (AGENT, Action.WRITE_EXPERIENCE, "team-a", "coder", True),
    (AGENT, Action.WRITE_EXPERIENCE, "team-a", "reviewer-bot", False),  # another agent's runs
    (AGENT, Action.WRITE_EXPERIENCE, "team-b", "coder", False),  # another namespace
    (AGENT, Action.WRITE_FEEDBACK, "team-a", "coder", True),
    (AGENT, Action.CALL_ROUTES, "team-a", None, True),
    (AGENT, Action.CALL_ROUTES, "team-b", None, False),
    (AGENT, Action.WRITE_ROUTES, "team-a", None, False),  # the hijack
    (AGENT, Action.WRITE_POLICIES, "team-a", None, False),
    (AGENT, Action.WRITE_REVIEWS, "team-a", None, False),  # approving its own pairs
    (AGENT, Action.READ_REVIEWS, "team-a", None, False),  # reading others' prompts
    (REVIEWER, Action.READ_REVIEWS, "team-a", None, True),
    (REVIEWER, Action.WRITE_REVIEWS, "team-a", None, True),
    (REVIEWER, Action.WRITE_FEEDBACK, "team-a", "coder", True),  # corrections, for any agent of the namespace
    (REVIEWER, Action.READ_REVIEWS, "team-b", None, False),
    (REVIEWER, Action.WRITE_EXPERIENCE, "team-a", "coder", False),
    (REVIEWER, Action.WRITE_ROUTES, "team-a", None, False),
    (OPERATOR, Action.WRITE_ROUTES, "any-namespace", None, True),
    (OPERATOR, Action.WRITE_POLICIES, "team-b", None, True),
    (OPERATOR, Action.WRITE_EXPERIENCE, "team-a", "coder", False),
    (OPERATOR, Action.READ_REVIEWS, "team-a", None, False),
    (OPERATOR, Action.CALL_ROUTES, "team-a", None, False),
    (REVIEWER, Action.READ_EXPERIMENTS, "team-a", None, True),  # the report, for people on call
    (REVIEWER, Action.READ_EXPERIMENTS, "team-b", None, False),
    (OPERATOR, Action.READ_EXPERIMENTS, "team-b", None, True),
    (AGENT, Action.READ_EXPERIMENTS, "team-a", None, False),  # agents never read back
    (ADMIN, Action.WRITE_EXPERIENCE, "team-a", "anyone", True),
    (ADMIN, Action.WRITE_ROUTES, "team-b", None, False),  # an admin of team-a only
    # The widget's token is public (it sits in a web page): it rates its own agents' answers, nothing else.
    (WIDGET, Action.WRITE_FEEDBACK, "team-a", "coder", True),
    (WIDGET, Action.WRITE_FEEDBACK, "team-a", "coder-route", True),  # a request its route served
    (WIDGET, Action.WRITE_FEEDBACK, "team-a", "reviewer-bot", False),  # another agent's answers
    (WIDGET, Action.WRITE_FEEDBACK, "team-b", "coder", False),
    (WIDGET, Action.WRITE_EXPERIENCE, "team-a", "coder", False),  # no runs or pairs
    (WIDGET, Action.CALL_ROUTES, "team-a", None, False),  # no model calls on someone else's bill
    (WIDGET, Action.READ_REVIEWS, "team-a", None, False),
    (WIDGET, Action.WRITE_REVIEWS, "team-a", None, False),
    (WIDGET, Action.READ_ROUTES, "team-a", None, False),
    (WIDGET, Action.WRITE_ROUTES, "team-a", None, False),
    (WIDGET, Action.WRITE_POLICIES, "team-a", None, False),
    (WIDGET, Action.READ_EXPERIMENTS, "team-a", None, False),
]


@pytest.mark.parametrize(("principal", "action", "namespace", "agent", "allowed"), CASES)
def test_role_table(
    principal: Principal, action: Action, namespace: str, agent: str | None, allowed: bool
) -> None:
    reason = role_refusal(principal, action, namespace, agent)
    assert (reason is None) == allowed, reason
    if reason is not None:  # a refusal says what would allow it
        assert "may not" in reason
        assert principal.subject in reason or str(principal.role) in reason


def test_an_agent_token_with_every_agent_writes_for_any_agent_of_its_namespace() -> None:
    fleet = Principal("fleet", Role.AGENT, ("team-a",), (ANY,))
    assert role_refusal(fleet, Action.WRITE_EXPERIENCE, "team-a", "whoever") is None
    assert role_refusal(fleet, Action.WRITE_EXPERIENCE, "team-b", "whoever") is not None


def test_a_kubernetes_identity_is_never_answered_from_the_role_table() -> None:
    account = Principal("system:serviceaccount:team-a:bot", None, ("team-a",))
    assert "RBAC" in str(role_refusal(account, Action.CALL_ROUTES, "team-a"))


def test_rbac_attributes_name_kaizens_api_group_resource_and_verb() -> None:
    assert rbac_attributes(Action.WRITE_EXPERIENCE, "team-a", "coder") == {
        "group": "gateway.kaizen.dev",
        "resource": "experience",
        "verb": "create",
        "namespace": "team-a",
        "name": "coder",
    }
    assert "name" not in rbac_attributes(Action.READ_REVIEWS, "team-a")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("PUT", "/v1/routes/team-a/coder", (Action.WRITE_ROUTES, "team-a", "coder")),
        ("DELETE", "/v1/routes/team-a/coder", (Action.WRITE_ROUTES, "team-a", "coder")),
        ("PUT", "/v1/policies/team-a/coder", (Action.WRITE_POLICIES, "team-a", "coder")),
        ("GET", "/v1/routes/team-a/coder", None),  # reads are the endpoint's to authorize
        ("PUT", "/v1/routes/team-a", None),
        ("PUT", "/v1/routes/team-a/coder/extra", None),
        ("POST", "/v1/runs/batch", None),  # the namespace and agents are in the body
    ],
)
def test_the_guard_authorizes_from_the_path_only_what_the_path_decides(
    method: str, path: str, expected: tuple[Action, str, str] | None
) -> None:
    from controllers.gateway.guard import path_action

    assert path_action(method, path) == expected


def test_rating_a_request_asks_a_feedback_token_for_feedback_on_the_route_and_others_for_its_use() -> None:
    assert request_rating_action(WIDGET) is Action.WRITE_FEEDBACK
    assert request_rating_action(AGENT) is Action.CALL_ROUTES
    assert request_rating_action(REVIEWER) is Action.CALL_ROUTES  # unchanged: reviewers never could
