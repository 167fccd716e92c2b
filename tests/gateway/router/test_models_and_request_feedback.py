"""The router as agent frameworks expect it, through real HTTP: ``GET .../v1/models`` first, a clear 404
for a route that does not exist, and feedback that names only the request id the router returned."""

from __future__ import annotations

import httpx
import pytest

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.store.db import make_engine, session_factory, transaction
from controllers.store.experiment_traffic import reward_stream
from controllers.store.experiments import observations
from devstack.gateway import GatewayProcess
from devstack.upstream import UpstreamProcess
from tests.gateway.router.conftest import SECRET, TOKEN, assignments, chat, put_route, route


def caller(role: Role, *namespaces: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue(SECRET, 'caller', 3600, role=role, namespaces=namespaces)}"}


def models(gateway: GatewayProcess, namespace: str, name: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{gateway.url}/openai/{namespace}/{name}/v1/models", headers=headers, timeout=30)


def test_the_model_list_names_the_route_for_whoever_may_use_it(
    gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    body = route("listed", upstream.base("champion"), upstream.base("challenger"))
    body["variants"][1]["model"] = "challenger-model-v2"
    put_route(gateway, body)
    for headers in (TOKEN, caller(Role.AGENT, "team")):
        response = models(gateway, "team", "listed", headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "object": "list",
            "data": [{"id": "listed", "object": "model", "created": 0, "owned_by": "kaizen"}],
        }
    # the model it lists is one a client can send
    path, request = chat("listed", model="listed")
    assert httpx.post(gateway.url + path, json=request, headers=TOKEN, timeout=30).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, "bearer token"),
        ({"Authorization": "Bearer kz2.not.signed"}, 401, "token"),
        (caller(Role.AGENT, "elsewhere"), 403, "may not"),  # an agent of another namespace
        (caller(Role.REVIEWER, "team"), 403, "may not"),  # no routes/use
        (caller(Role.OPERATOR, "*"), 403, "may not"),
    ],
)
def test_the_model_list_is_refused_to_callers_who_may_not_use_the_route(
    gateway: GatewayProcess, upstream: UpstreamProcess, headers: dict[str, str], status: int, words: str
) -> None:
    put_route(gateway, route("guarded", upstream.base("champion")))
    response = models(gateway, "team", "guarded", headers)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    assert "data" not in response.json()  # no model list for them


def test_an_unknown_route_or_one_in_another_namespace_is_a_404_saying_routes_are_the_policys(
    gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    put_route(gateway, route("known", upstream.base("champion")))
    for namespace, name in (("team", "unknown"), ("other", "known")):
        for response in (
            models(gateway, namespace, name, TOKEN),
            httpx.post(
                f"{gateway.url}/openai/{namespace}/{name}/v1/chat/completions", json={}, headers=TOKEN
            ),
        ):
            assert response.status_code == 404, response.text
            error = response.json()["error"]
            assert (error["type"], error["code"], error["param"]) == ("not_found", 404, "route")
            assert f"no route '{namespace}/{name}'" in error["message"]
            assert "named after its LearningPolicy" in error["message"]
            assert "operator" in error["message"]
            assert "create it with PUT" not in error["message"]
    # an agent of the route's namespace may not look into another namespace at all
    assert models(gateway, "other", "known", caller(Role.AGENT, "team")).status_code == 403


def test_the_model_list_takes_get_only_and_is_in_the_openapi_document(gateway: GatewayProcess) -> None:
    posted = httpx.post(f"{gateway.url}/openai/team/x/v1/models", headers=TOKEN, timeout=30)
    assert posted.status_code == 405
    assert "use GET" in posted.json()["error"]["message"]
    document = httpx.get(f"{gateway.url}/openapi.json", timeout=30).json()
    operation = document["paths"]["/openai/{namespace}/{route}/v1/models"]["get"]
    assert operation["security"] == [{"HTTPBearer": []}]
    assert {p["name"] for p in operation["parameters"]} == {"namespace", "route"}
    assert set(operation["responses"]) == {"200", "401", "403", "404"}
    assert "data" in document["components"]["schemas"]["ModelList"]["properties"]


def test_feedback_on_the_request_id_alone_counts_before_the_run_and_once_after_it(
    gateway: GatewayProcess, upstream: UpstreamProcess, shared_url: str
) -> None:
    put_route(gateway, route("rated", upstream.base("champion")))
    path, request = chat("rated")
    ids = [
        httpx.post(gateway.url + path, json=request, headers=TOKEN, timeout=30).headers["x-kaizen-request-id"]
        for _ in range(3)
    ]
    assignments(shared_url, "exp-rated", 3)  # recorded (flushed off the request path)
    feedback = [
        {"requestId": ids[0], "thumbs": 1},
        {"requestId": ids[1], "rating": 5},
        {"requestId": ids[2], "thumbs": -1},
    ]
    write = {**TOKEN, "Idempotency-Key": "rated-feedback"}
    response = httpx.post(
        f"{gateway.url}/v1/feedback/batch", json={"namespace": "team", "feedback": feedback}, headers=write
    )
    assert response.status_code == 200, response.text
    found, total, stream = counted(shared_url)
    assert (found, total, sorted(stream)) == (3, 2.0, [0.0, 1.0, 1.0])  # one batch: recorded in one instant
    # the third request's run comes later and compiled: the request's reward is now the run's, with
    # the thumbs down it took over (compile 1, human 0)
    run = {"agent": "coder", "taskId": "t", "prompt": "p", "output": "o", "requestId": ids[2]}
    run["signals"] = {"compileOk": True}
    write = {**TOKEN, "Idempotency-Key": "rated-run"}
    response = httpx.post(
        f"{gateway.url}/v1/runs/batch", json={"namespace": "team", "runs": [run]}, headers=write
    )
    assert response.status_code == 200, response.text
    assert counted(shared_url) == (3, 2.5, [1.0, 1.0, 0.5])


def counted(url: str) -> tuple[int, float, list[float]]:
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        found = observations(session, "exp-rated")["champion"]
        stream = reward_stream(session, "exp-rated")
    engine.dispose()
    return found.rewards, found.reward_sum, stream.reward.tolist()
