"""Where traffic goes is the operator's to say: hijacks and SSRF attempts against a real gateway process."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.security.gateway_world import NAMESPACE, World, route


def _endpoint_of(world: World, name: str) -> str:
    answer = world.call("GET", f"/v1/routes/{NAMESPACE}/{name}", "operator")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["config"]["variants"][0]["endpoint"])


@pytest.mark.parametrize("caller", ["agent", "reviewer", "sa-plain", "agent-elsewhere"])
def test_a_route_hijack_with_a_non_operator_identity_is_refused(security_world: World, caller: str) -> None:
    original = _endpoint_of(security_world, "seeded")
    hijack = route(NAMESPACE, "seeded", "http://attacker.evil.svc.cluster.local/v1")
    answer = security_world.call("PUT", f"/v1/routes/{NAMESPACE}/seeded", caller, hijack)
    assert answer.status_code == 403, answer.text
    assert "may not" in answer.json()["error"]
    assert _endpoint_of(security_world, "seeded") == original


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.1:8080/v1",  # an arbitrary in-network address
        "http://kubernetes.default.svc.cluster.local.evil.example/v1",
        "http://user:secret@model.team-a.svc/v1",
        "http://model.team-a.svc/v1?redirect=http://x",
        "file:///etc/passwd",
        "gopher://model.team-a.svc:70/",
        "::::",
    ],
)
def test_ssrf_endpoints_cannot_be_stored_even_by_the_operator(security_world: World, endpoint: str) -> None:
    before = security_world.written()
    answer = security_world.call(
        "PUT", f"/v1/routes/{NAMESPACE}/ssrf", "operator", route(NAMESPACE, "ssrf", endpoint)
    )
    assert answer.status_code == 422, answer.text
    assert any("endpoint" in problem["field"] for problem in answer.json()["problems"]), answer.text
    assert security_world.written() == before
    assert security_world.call("GET", f"/v1/routes/{NAMESPACE}/ssrf", "operator").status_code == 404


@pytest.mark.parametrize("field", ["variant", "experiment"])
def test_names_that_would_break_response_headers_are_refused(security_world: World, field: str) -> None:
    config = route(NAMESPACE, "headers", security_world.upstream_base)
    if field == "variant":
        config["variants"][0]["name"] = "champion\r\nSet-Cookie: x=1"
    else:
        config["experiment"] = "exp\r\nX-Injected: 1"
    answer = security_world.call("PUT", f"/v1/routes/{NAMESPACE}/headers", "operator", config)
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("caller", ["agent", "reviewer", "sa-plain"])
def test_no_one_but_the_operator_deletes_or_lists_routes(security_world: World, caller: str) -> None:
    deleted = security_world.call("DELETE", f"/v1/routes/{NAMESPACE}/seeded", caller)
    assert deleted.status_code == 403, deleted.text
    assert _endpoint_of(security_world, "seeded") == security_world.upstream_base
    listed = security_world.call("GET", "/v1/routes", caller)
    assert listed.status_code == 200
    assert listed.json()["routes"] == []  # the list shows only what the caller may read
    names = [
        r["config"]["name"] for r in security_world.call("GET", "/v1/routes", "operator").json()["routes"]
    ]
    assert "seeded" in names


@pytest.mark.parametrize("body", [{"not": "a route"}, "[[[", None])
def test_a_hijack_is_refused_before_its_body_is_looked_at(security_world: World, body: object) -> None:
    """Writing a route is authorized from the path: whatever the body, an agent gets a 403, not a 422."""
    for method in ("PUT", "DELETE"):
        answer = httpx.request(
            method,
            f"{security_world.gateway.url}/v1/routes/{NAMESPACE}/seeded",
            content=json.dumps(body) if body is not None else b"",
            headers={**security_world.callers["agent"], "content-type": "application/json"},
        )
        assert answer.status_code == 403, answer.text
    policy = security_world.call("PUT", f"/v1/policies/{NAMESPACE}/any", "agent", {"reward": "nonsense"})
    assert policy.status_code == 403, policy.text
