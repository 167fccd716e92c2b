"""The router through real HTTP: stickiness, weights, pass-through, fallback, pins and clear errors."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from controllers.api.routes import allocation_text
from controllers.decisions.assign import choose, unit_hash
from controllers.store.db import make_engine, session_factory, transaction
from controllers.store.experiments import observations
from devstack.gateway import GatewayProcess
from devstack.upstream import UpstreamProcess
from tests.gateway.router.conftest import (
    PERSONAS,
    TOKEN,
    assignments,
    chat,
    dead_endpoint,
    put_route,
    read_stream,
    route,
)


def send_all(base: str, requests: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[httpx.Response]:
    """Send (path, body, headers) requests concurrently over keep-alive connections."""

    async def main() -> list[httpx.Response]:
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:

            async def one(path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
                async with limit:
                    return await client.post(path, json=body, headers={**TOKEN, **headers})

            return await asyncio.gather(*(one(*request) for request in requests))

    return asyncio.run(main())


def answered_by(response: httpx.Response) -> str:
    """Which upstream persona wrote the answer (the stand-in starts every answer with its name)."""
    if response.headers["content-type"].startswith("text/event-stream"):
        return str(read_stream(response)[1]["choices"][0]["delta"]["content"])  # type: ignore[index]
    return str(response.json()["choices"][0]["message"]["content"].split()[0])


def test_each_user_always_gets_the_variant_its_hash_picks_and_shares_follow_the_weights(
    gateway: GatewayProcess, upstream: UpstreamProcess, shared_url: str
) -> None:
    put_route(gateway, route("sticky", upstream.base("champion"), upstream.base("challenger"), weight=30))
    users = [f"user-{i}" for i in range(400)]
    path, _ = chat("sticky")
    requests = [(path, chat("sticky", user=user)[1], {}) for user in users for _ in range(2)]
    responses = send_all(gateway.url, requests)

    served: dict[str, set[str]] = {}
    by_request: dict[str, str] = {}
    for (_, body, _), response in zip(requests, responses, strict=True):
        assert response.status_code == 200, response.text
        assert response.headers["x-kaizen-experiment"] == "exp-sticky"
        assert answered_by(response) == response.headers["x-kaizen-variant"]
        served.setdefault(body["user"], set()).add(response.headers["x-kaizen-variant"])
        by_request[response.headers["x-kaizen-request-id"]] = body["user"]
    assert all(len(variants) == 1 for variants in served.values()), "a user changed variant"
    weights = [("champion", 70), ("challenger", 30)]
    assert {u: v.pop() for u, v in served.items()} == {
        u: choose(unit_hash("exp-sticky", u), weights) for u in users
    }
    share = Counter(choose(unit_hash("exp-sticky", u), weights) for u in users)["challenger"] / len(users)
    assert abs(share - 0.3) <= 4 * math.sqrt(0.3 * 0.7 / len(users))

    rows = assignments(shared_url, "exp-sticky", len(requests))
    assert all(row.unit_hash == unit_hash("exp-sticky", by_request[row.request_id]) for row in rows)
    assert all(by_request[row.request_id] not in row.unit_hash for row in rows)
    assert all(row.status_code == 200 and row.latency_ms and row.cost_tokens for row in rows)
    # each row keeps the weights it was assigned by, for the sequential tests
    assert {row.allocation for row in rows} == {allocation_text({"champion": 70, "challenger": 30})}


def test_streamed_chunks_reach_the_client_as_the_upstream_produces_them(
    gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    put_route(gateway, route("stream", upstream.base("paced")))
    path, body = chat("stream", stream=True)
    arrivals: list[float] = []
    started = time.perf_counter()
    with httpx.stream("POST", gateway.url + path, json=body, headers=TOKEN, timeout=30) as response:
        chunks = []
        for chunk in response.iter_raw():
            arrivals.append(time.perf_counter() - started)
            chunks.append(chunk)
    # The paced upstream spends token_delay per token: the first chunk must not wait for the last.
    # Measured between chunks, so a slow start on a busy machine does not count against the proxy.
    span = PERSONAS["paced"]["token_delay"] * PERSONAS["paced"]["tokens"]
    assert arrivals[-1] >= 0.9 * span
    assert arrivals[-1] - arrivals[0] >= 0.5 * span
    assert len(chunks) >= 10
    assert response.headers["content-type"].startswith("text/event-stream")
    direct = httpx.post(f"{upstream.base('paced')}/chat/completions", json=body, timeout=30)
    routed, expected = read_stream(httpx.Response(200, content=b"".join(chunks))), read_stream(direct)
    assert routed[-1] == "[DONE]"
    assert [strip_ids(event) for event in routed] == [strip_ids(event) for event in expected]


def strip_ids(document: dict[str, Any] | str) -> dict[str, Any] | str:
    return (
        {k: v for k, v in document.items() if k not in ("id", "created")}
        if isinstance(document, dict)
        else document
    )


@pytest.mark.parametrize("endpoint", ["chat/completions", "completions"])
@pytest.mark.parametrize("stream", [False, True])
def test_answers_pass_through_in_the_upstreams_openai_shapes(
    gateway: GatewayProcess, upstream: UpstreamProcess, endpoint: str, stream: bool
) -> None:
    put_route(gateway, route("shapes", upstream.base("champion")))
    body: dict[str, Any] = {"model": "base", "max_tokens": 5, "stream": stream}
    body |= (
        {"messages": [{"role": "user", "content": "hi"}]}
        if endpoint == "chat/completions"
        else {"prompt": "hi"}
    )
    routed = httpx.post(f"{gateway.url}/openai/team/shapes/v1/{endpoint}", json=body, headers=TOKEN)
    direct = httpx.post(f"{upstream.base('champion')}/{endpoint}", json=body)
    assert routed.status_code == direct.status_code == 200
    assert routed.headers["content-type"] == direct.headers["content-type"]
    if stream:
        assert [strip_ids(e) for e in read_stream(routed)] == [strip_ids(e) for e in read_stream(direct)]
    else:
        assert strip_ids(routed.json()) == strip_ids(direct.json())


def test_a_variant_with_a_model_name_replaces_the_clients_model(
    gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    body = route("model", upstream.base("champion"))
    body["variants"][0]["model"] = "coder-lora-7"
    put_route(gateway, body)
    path, request = chat("model", model="whatever-the-client-said")
    response = httpx.post(gateway.url + path, json=request, headers=TOKEN)
    assert response.json()["model"] == "coder-lora-7"


@pytest.mark.parametrize(
    ("failure", "reason"), [("refused", "connection failed"), ("broken", "HTTP 500"), ("slow", "timed out")]
)
def test_a_failing_challenger_is_replaced_by_the_champion_and_no_client_request_fails(
    gateway: GatewayProcess, upstream: UpstreamProcess, shared_url: str, failure: str, reason: str
) -> None:
    name = f"fallback-{failure}"
    challenger = dead_endpoint() if failure == "refused" else upstream.base(failure)
    # The route's timeout bounds the champion's answer too: 2 s, which a loaded machine's champion
    # meets, while the slow challenger takes 10 s.
    put_route(gateway, route(name, upstream.base("champion"), challenger, weight=100, timeout_seconds=2.0))
    requests = [(chat(name)[0], chat(name, user=f"u{i}", stream=i % 2 == 0)[1], {}) for i in range(20)]
    responses = send_all(gateway.url, requests)
    assert [r.status_code for r in responses] == [200] * 20
    assert {r.headers["x-kaizen-variant"] for r in responses} == {"champion"}
    assert {answered_by(r) for r in responses} == {"champion"}
    assert all(read_stream(r)[-1] == "[DONE]" for r in responses[::2])

    rows = assignments(shared_url, f"exp-{name}", 20)
    assert {(row.variant, row.served_variant, row.fallback, row.error) for row in rows} == {
        ("challenger", "champion", True, True)
    }
    assert all(reason in (row.error_message or "") for row in rows), rows[0].error_message
    metric = f'kaizen_router_fallbacks_total{{route="team/{name}",variant="challenger"}} 20.0'
    assert metric in httpx.get(f"{gateway.url}/metrics").text


def test_when_no_variant_can_answer_the_client_gets_a_502_naming_each_failure(
    gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    put_route(gateway, route("all-down", dead_endpoint(), upstream.base("broken"), weight=100))
    path, body = chat("all-down")
    response = httpx.post(gateway.url + path, json=body, headers=TOKEN)
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "no healthy variant" in message
    assert "challenger: HTTP 500" in message
    assert "champion: connection failed" in message


def test_a_champion_5xx_is_passed_on_as_the_upstream_said_it(
    gateway: GatewayProcess, upstream: UpstreamProcess, shared_url: str
) -> None:
    put_route(gateway, route("champion-500", upstream.base("broken")))
    path, body = chat("champion-500")
    response = httpx.post(gateway.url + path, json=body, headers=TOKEN)
    assert response.status_code == 500
    assert response.json()["error"]["message"] == "persona broken fails with 500"
    (row,) = assignments(shared_url, "exp-champion-500", 1)
    assert (row.served_variant, row.status_code, row.error, row.fallback) == ("champion", 500, True, False)


def test_a_stream_cut_after_its_first_bytes_ends_with_an_error_event_and_an_error_row(
    gateway: GatewayProcess, upstream: UpstreamProcess, shared_url: str
) -> None:
    put_route(gateway, route("cut", upstream.base("cut")))
    path, body = chat("cut", stream=True)
    response = httpx.post(gateway.url + path, json=body, headers=TOKEN)
    events = read_stream(response)
    assert response.status_code == 200
    assert len(events) == 5  # three chunks, the error, [DONE]
    assert "upstream broke mid-stream" in events[3]["error"]["message"]  # type: ignore[index]
    assert events[4] == "[DONE]"
    (row,) = assignments(shared_url, "exp-cut", 1)
    assert row.error
    assert "mid-stream" in (row.error_message or "")


def test_a_pinned_request_is_served_by_its_pin_and_left_out_of_the_statistics(
    gateway: GatewayProcess, upstream: UpstreamProcess, shared_url: str
) -> None:
    put_route(gateway, route("pinned", upstream.base("champion"), upstream.base("challenger"), weight=0))
    path, body = chat("pinned")
    pinned = [
        (path, body, {"X-Kaizen-Variant": "challenger", "X-Kaizen-Request-Id": f"pin-{i}"}) for i in range(10)
    ]
    plain = [(path, chat("pinned", user=f"u{i}")[1], {}) for i in range(10)]
    responses = send_all(gateway.url, pinned + plain)
    assert [r.headers["x-kaizen-variant"] for r in responses] == ["challenger"] * 10 + ["champion"] * 10
    assert [answered_by(r) for r in responses[:10]] == ["challenger"] * 10
    assert [r.headers["x-kaizen-request-id"] for r in responses[:10]] == [f"pin-{i}" for i in range(10)]

    rows = assignments(shared_url, "exp-pinned", 20)
    assert sorted(row.request_id for row in rows if row.pinned) == sorted(f"pin-{i}" for i in range(10))
    engine = make_engine(shared_url)
    with transaction(session_factory(engine)) as session:
        found = observations(session, "exp-pinned")
    engine.dispose()
    assert set(found) == {"champion"}
    assert found["champion"].assigned == 10


def test_requests_the_proxy_cannot_serve_get_openai_errors_naming_the_problem(
    gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    put_route(gateway, route("errors", upstream.base("champion")))
    path, body = chat("errors")
    url = gateway.url + path

    def error(response: httpx.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.text
        return dict(response.json()["error"])

    assert (
        "team/nope"
        in error(httpx.post(gateway.url + chat("nope")[0], json=body, headers=TOKEN), 404)["message"]
    )
    assert "bearer token" in error(httpx.post(url, json=body), 401)["message"]
    assert error(httpx.post(url, content=b"{not json", headers=TOKEN), 400)["param"] == "body"
    pin = {**TOKEN, "X-Kaizen-Variant": "nobody"}
    assert error(httpx.post(url, json=body, headers=pin), 400)["param"] == "X-Kaizen-Variant"
    bad_id = {**TOKEN, "X-Kaizen-Request-Id": "has spaces"}
    assert "X-Kaizen-Request-Id" in error(httpx.post(url, json=body, headers=bad_id), 400)["message"]
    assert (
        "/v1/chat/completions"
        in error(httpx.post(f"{gateway.url}/openai/team/errors/v2/x", headers=TOKEN), 404)["message"]
    )
    assert error(httpx.get(url, headers=TOKEN), 405)["code"] == 405


def test_routes_are_put_idempotently_read_back_validated_and_deleted(
    gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    body = route("crud", upstream.base("champion"), upstream.base("challenger"), weight=5)
    first, again = put_route(gateway, body), put_route(gateway, body)
    assert (first["version"], first["changed"], again["version"], again["changed"]) == (1, True, 1, False)
    body["variants"][0]["weight"], body["variants"][1]["weight"] = 75, 25
    assert put_route(gateway, body)["version"] == 2
    read = httpx.get(f"{gateway.url}/v1/routes/team/crud", headers=TOKEN).json()
    assert read["version"] == 2
    assert [v["weight"] for v in read["config"]["variants"]] == [75, 25]

    routes = f"{gateway.url}/v1/routes/team"
    mismatch = httpx.put(f"{routes}/other", json=body, headers=TOKEN)
    assert mismatch.status_code == 422
    assert [p["field"] for p in mismatch.json()["problems"]] == ["name"]
    bad = {**body, "variants": [{**body["variants"][0], "weight": 60}, body["variants"][1]]}
    invalid = httpx.put(f"{routes}/crud", json=bad, headers=TOKEN)
    assert invalid.status_code == 422
    assert "add up to 100" in invalid.json()["error"]
    assert httpx.put(f"{routes}/crud", json=body).status_code == 401
    assert httpx.get(f"{routes}/missing", headers=TOKEN).status_code == 404

    assert httpx.delete(f"{routes}/crud", headers=TOKEN).json() == {"deleted": True}
    path, request = chat("crud")
    assert httpx.post(gateway.url + path, json=request, headers=TOKEN).status_code == 404


def test_a_client_that_hangs_up_mid_stream_is_noted_without_blaming_the_variant(
    gateway: GatewayProcess, upstream: UpstreamProcess, shared_url: str
) -> None:
    put_route(gateway, route("hangup", upstream.base("paced")))
    path, body = chat("hangup", stream=True)
    with httpx.stream("POST", gateway.url + path, json=body, headers=TOKEN) as response:
        assert next(response.iter_raw()).startswith(b"data: ")
    (row,) = assignments(shared_url, "exp-hangup", 1)
    assert (row.status_code, row.error, row.error_message) == (
        200,
        False,
        "the client disconnected mid-stream",
    )
    assert httpx.post(gateway.url + path, json={**body, "stream": False}, headers=TOKEN).status_code == 200


def test_raising_the_challenger_through_the_routes_api_moves_only_champion_users_and_only_to_it(
    gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    body = route("step", upstream.base("champion"), upstream.base("challenger"), weight=5)
    users = [f"user-{i}" for i in range(300)]
    requests = [(chat("step")[0], chat("step", user=user)[1], {}) for user in users]

    def variants() -> list[str]:
        return [r.headers["x-kaizen-variant"] for r in send_all(gateway.url, requests)]

    put_route(gateway, body)
    before = variants()
    body["variants"][0]["weight"], body["variants"][1]["weight"] = 75, 25
    assert put_route(gateway, body)["version"] == 2
    after = variants()
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert set(moved) == {("champion", "challenger")}
    assert len(moved) == after.count("challenger") - before.count("challenger")
    assert abs(len(moved) / len(users) - 0.20) <= 4 * math.sqrt(0.2 * 0.8 / len(users))
