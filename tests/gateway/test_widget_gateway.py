"""The feedback widget's gateway side, on the real app and both stores: its script, the cross-origin
access of the feedback path (listed origins only, that path only, what the widget sends only), and the
feedback token it carries, refused everywhere but feedback on its own agents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.gateway.app import GatewaySettings, create_app
from controllers.gateway.ui_session import SECURITY_HEADERS
from controllers.gateway.widget import parse_origins
from controllers.store.models import Feedback
from tests.gateway.conftest import SECRET
from tests.gateway.test_ingest_api import count, runs

APP = "https://app.example.com"
OTHER = "http://127.0.0.1:8123"
HOSTILE = [
    "https://evil.example",
    "https://app.example.com.evil.example",  # the listed one as a prefix
    "https://evilapp.example.com",
    "http://app.example.com",  # another scheme is another origin
    "https://app.example.com:8443",
    "https://APP.example.com",
    "https://app.example.com/",
    "null",  # sandboxed frames and file: pages
    "*",
    "https://app.example.com, https://evil.example",
]


def bearer(role: Role, agents: tuple[str, ...] | None = None, ttl: int = 3600) -> dict[str, str]:
    token = auth.issue(SECRET, f"{role.value}-caller", ttl, role=role, namespaces=["team"], agents=agents)
    return {"Authorization": f"Bearer {token}"}


WIDGET = bearer(Role.FEEDBACK, ("coder",))
ADMIN = bearer(Role.ADMIN)


@pytest.fixture
def widget_client(store_url: str) -> Iterator[TestClient]:
    settings = GatewaySettings(database_url=store_url, token_secret=SECRET, widget_origins=(APP, OTHER))
    app = create_app(settings)
    with TestClient(app) as test_client:
        test_client.post("/v1/runs/batch", json={**runs("o", id="r1"), "namespace": "team"},
                         headers={**ADMIN, "Idempotency-Key": "seed"})  # fmt: skip
        yield test_client
    app.state.engine.dispose()


def preflight(client: TestClient, path: str, origin: str, **asked: str) -> Any:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": asked.get("method", "POST"),
        "Access-Control-Request-Headers": asked.get("headers", "authorization,content-type,idempotency-key"),
    }
    return client.options(path, headers=headers)


def thumbs(run_id: str = "r1") -> dict[str, Any]:
    return {"namespace": "team", "feedback": [{"runId": run_id, "thumbs": 1, "correction": "better"}]}


def test_a_listed_origin_may_post_feedback_and_nothing_more(widget_client: TestClient) -> None:
    allowed = preflight(widget_client, "/v1/feedback/batch", APP)
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == APP
    assert allowed.headers["access-control-allow-methods"] == "POST"
    assert "access-control-allow-credentials" not in allowed.headers  # cookies never cross
    assert "origin" in allowed.headers["vary"].lower()
    for method, headers in (("PUT", "authorization"), ("POST", "authorization,cookie,x-other")):
        refused = preflight(widget_client, "/v1/feedback/batch", APP, method=method, headers=headers)
        assert refused.status_code == 400, f"{method} {headers}: {refused.text}"


@pytest.mark.parametrize("origin", HOSTILE)
def test_an_origin_not_listed_exactly_gets_no_allow_origin(widget_client: TestClient, origin: str) -> None:
    answer = preflight(widget_client, "/v1/feedback/batch", origin)
    assert "access-control-allow-origin" not in answer.headers, answer.headers
    posted = widget_client.post("/v1/feedback/batch", json=thumbs(),
                                headers={**WIDGET, "Origin": origin, "Idempotency-Key": f"k-{origin}"})  # fmt: skip
    assert "access-control-allow-origin" not in posted.headers  # the browser keeps the answer from the page


@pytest.mark.parametrize(
    "path", ["/v1/runs/batch", "/v1/pairs/batch", "/v1/reviews/batch", "/v1/review/queue", "/ui/sign-in",
             "/v1/routes/team/coder", "/openai/team/coder/v1/chat/completions", "/widget/kaizen-feedback.js"],
)  # fmt: skip
def test_no_other_path_answers_any_origin(widget_client: TestClient, path: str) -> None:
    answer = preflight(widget_client, path, APP)
    assert "access-control-allow-origin" not in answer.headers, f"{path}: {answer.headers}"


def test_the_feedback_path_answers_no_origin_when_none_is_configured(client: TestClient) -> None:
    answer = preflight(client, "/v1/feedback/batch", APP)
    assert "access-control-allow-origin" not in answer.headers


def test_the_widget_can_read_the_gateways_answer_and_its_refusals(
    widget_client: TestClient, engine: Engine
) -> None:
    sent = {**WIDGET, "Origin": APP, "Idempotency-Key": "same"}
    for _ in range(2):  # a double click: the same key, one row
        answer = widget_client.post("/v1/feedback/batch", json=thumbs(), headers=sent)
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == APP
    assert count(engine, Feedback) == 1
    expired = bearer(Role.FEEDBACK, ("coder",), ttl=-5)
    refused = widget_client.post("/v1/feedback/batch", json=thumbs(),
                                 headers={**expired, "Origin": APP, "Idempotency-Key": "x"})  # fmt: skip
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == APP  # so the widget can say why
    assert "expired" in refused.json()["error"]


CALLS = [
    ("POST", "/v1/runs/batch", {**runs("o"), "namespace": "team"}),
    ("POST", "/v1/pairs/batch",
     {"namespace": "team", "pairs": [{"agent": "coder", "prompt": "p", "chosen": "a", "rejected": "b"}]}),
    ("POST", "/v1/annotations/batch", {"namespace": "team", "annotations": [{"runId": "r1"}]}),
    ("GET", "/v1/review/queue?namespace=team", None),
    ("POST", "/v1/reviews/batch",
     {"namespace": "team", "reviews": [{"kind": "pair", "id": "x", "decision": "approved"}]}),
    ("POST", "/v1/review/reservations", {"namespace": "team"}),
    ("GET", "/v1/review/progress?namespace=team", None),
    ("PUT", "/v1/routes/team/coder",
     {"namespace": "team", "name": "coder", "variants": [{"name": "c", "endpoint": "http://m.team.svc:80",
                                                          "weight": 100, "champion": True}]}),
    ("GET", "/v1/routes/team/coder", None),
    ("PUT", "/v1/policies/team/coder", {"agent": "coder"}),
    ("GET", "/v1/experiments/team/coder/series", None),
    ("GET", "/v1/loop/team/coder", None),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=lambda v: v if isinstance(v, str) else "")
def test_a_feedback_token_is_refused_everywhere_else_naming_why(
    widget_client: TestClient, engine: Engine, method: str, path: str, body: Any
) -> None:
    before = count(engine, Feedback)
    answer = widget_client.request(method, path, json=body, headers={**WIDGET, "Idempotency-Key": path})
    assert answer.status_code == 403, f"{method} {path}: {answer.status_code} {answer.text}"
    assert "role feedback may not" in answer.json()["error"], answer.text
    assert count(engine, Feedback) == before


def test_a_feedback_token_rates_only_its_own_agents_and_namespace(widget_client: TestClient) -> None:
    widget_client.post("/v1/runs/batch", json={**runs("o", id="r2", agent="other"), "namespace": "team"},
                       headers={**ADMIN, "Idempotency-Key": "seed-other"})  # fmt: skip
    other = widget_client.post(
        "/v1/feedback/batch", json=thumbs("r2"), headers={**WIDGET, "Idempotency-Key": "o"}
    )
    assert other.status_code == 403, other.text
    assert "may not rate answers of 'other'" in other.text
    elsewhere = {**thumbs(), "namespace": "team-b"}
    answer = widget_client.post(
        "/v1/feedback/batch", json=elsewhere, headers={**WIDGET, "Idempotency-Key": "e"}
    )
    assert answer.status_code == 403, answer.text
    assert "may not act in namespace" in answer.text
    chat = widget_client.post("/openai/team/coder/v1/chat/completions", json={"model": "m", "messages": []},
                              headers=WIDGET)  # fmt: skip
    assert chat.status_code in (403, 404), chat.text  # never a model call


def test_a_feedback_token_cannot_sign_in_to_the_pages(widget_client: TestClient) -> None:
    token = WIDGET["Authorization"].removeprefix("Bearer ")
    answer = widget_client.post("/ui/sign-in", data={"token": token}, headers={"Origin": "http://testserver"},
                                follow_redirects=False)  # fmt: skip
    assert answer.status_code == 403, answer.text
    assert "kaizen_session" not in answer.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{", 422), (b'{"feedback": "x"}', 422), (b'{"namespace":"team","feedback":[{"runId":"r1","rating":9}]}', 422),
     (b'{"namespace":"team","feedback":[{"runId":"r1","thumbs":1}],"x":' + b"1" * (5 * 1024 * 1024) + b"}", 413)],
)  # fmt: skip
def test_malformed_or_huge_bodies_from_the_widget_are_still_refused(
    widget_client: TestClient, engine: Engine, body: bytes, status: int
) -> None:
    headers = {**WIDGET, "Origin": APP, "Content-Type": "application/json", "Idempotency-Key": "bad"}
    answer = widget_client.post("/v1/feedback/batch", content=body, headers=headers)
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["access-control-allow-origin"] == APP
    assert count(engine, Feedback) == 0


def test_the_script_is_served_and_the_pages_headers_are_unchanged(widget_client: TestClient) -> None:
    script = widget_client.get("/widget/kaizen-feedback.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert 'customElements.define("kaizen-feedback"' in script.text
    page = widget_client.get("/ui/sign-in", headers={"Origin": APP})
    assert {k: page.headers[k] for k in SECURITY_HEADERS} == SECURITY_HEADERS
    assert "access-control-allow-origin" not in page.headers


@pytest.mark.parametrize("bad", ["*", "https://app.example.com/", "HTTPS://app.example.com", "app.example.com",
                                 "https://*.example.com", "null", "https://user@app.example.com"])  # fmt: skip
def test_a_setting_that_is_not_a_list_of_exact_origins_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="KAIZEN_WIDGET_ORIGINS"):
        parse_origins(f"{APP},{bad}")
    assert parse_origins(f" {APP} ,http://[::1]:8080,") == (APP, "http://[::1]:8080")
