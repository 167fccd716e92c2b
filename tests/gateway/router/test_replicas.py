"""What production does to the router: several replicas sharing one store, and the store going away."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from controllers.store import migrate
from devstack.gateway import GatewayProcess
from devstack.postgres import ThrowawayPostgres
from devstack.upstream import UpstreamProcess
from tests.gateway.router.conftest import SECRET, TOKEN, assignments, chat, put_route, route
from tests.gateway.router.test_proxy import send_all


def first_served_by(client: httpx.Client, url: str, wanted: str, timeout: float = 5.0) -> float:
    """When (perf_counter) the first request through ``url`` that ``wanted`` served was sent.

    The send time, not the answer time: a slow answer on a busy machine says nothing about how
    soon the replica picked up the change.
    """
    started = time.perf_counter()
    path, body = chat("replicas")
    while time.perf_counter() - started < timeout:
        sent = time.perf_counter()
        response = client.post(url + path, json=body, headers=TOKEN)
        if response.status_code == 200 and response.headers["x-kaizen-variant"] == wanted:
            return sent
        time.sleep(0.01)
    raise AssertionError(f"{url} never served {wanted}")


def test_a_weight_change_put_on_one_replica_takes_effect_on_another_within_a_second(
    gateway: GatewayProcess, upstream: UpstreamProcess, shared_url: str, tmp_path: Path
) -> None:
    second = GatewayProcess(shared_url, SECRET, tmp_path / "second.log")
    second.start()
    try:
        body = route(
            "replicas", upstream.base("champion"), upstream.base("challenger"), weight=0, unit="Request"
        )
        put_route(gateway, body)
        delays = []
        path, chat_body = chat("replicas")
        with (
            httpx.Client(timeout=10) as client,
            httpx.Client(timeout=10) as own,
            ThreadPoolExecutor(1) as pool,
        ):
            first_served_by(client, second.url, "champion")
            for weight in (100, 0, 100, 0):
                body["variants"][0]["weight"], body["variants"][1]["weight"] = 100 - weight, weight
                wanted = "challenger" if weight else "champion"
                put_route(gateway, body)
                stored = time.perf_counter()
                # The replica that stored it serves the change from the very next request, no poll;
                # asked beside the other replica's probes, so that its round trip is not counted there.
                served = pool.submit(own.post, gateway.url + path, json=chat_body, headers=TOKEN)
                delays.append(first_served_by(client, second.url, wanted) - stored)
                assert served.result().headers["x-kaizen-variant"] == wanted
    finally:
        second.stop()
    print(f"\nweight change seen by the other replica after (s): {[round(d, 3) for d in delays]}")
    assert max(delays) < 1.0, delays


def metric(gateway: GatewayProcess, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", httpx.get(f"{gateway.url}/metrics").text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_proxying_goes_on_while_the_store_is_down_and_the_rows_arrive_when_it_returns(
    upstream: UpstreamProcess, tmp_path: Path
) -> None:
    store = ThrowawayPostgres(tmp_path / "pg")
    store.start()
    migrate.upgrade(store.url)
    gateway = GatewayProcess(store.url, SECRET, tmp_path / "gateway.log")
    gateway.start()
    try:
        put_route(gateway, route("outage", upstream.base("champion"), upstream.base("challenger"), weight=50))
        store.stop()
        requests = [(chat("outage")[0], chat("outage", user=f"u{i}")[1], {}) for i in range(40)]
        responses = send_all(gateway.url, requests)
        assert [r.status_code for r in responses] == [200] * 40
        assert {r.headers["x-kaizen-variant"] for r in responses} == {"champion", "challenger"}
        deadline = time.monotonic() + 10
        while (
            metric(gateway, "kaizen_router_assignment_flush_failures_total") == 0
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert metric(gateway, "kaizen_router_assignment_flush_failures_total") > 0
        assert metric(gateway, "kaizen_router_assignments_pending") == 40
        assert metric(gateway, "kaizen_router_route_refresh_failures_total") > 0

        store.start()
        rows = assignments(store.url, "exp-outage", 40, timeout=20)
        served = {r.headers["x-kaizen-request-id"]: r.headers["x-kaizen-variant"] for r in responses}
        assert {row.request_id: row.served_variant for row in rows} == served
        assert metric(gateway, "kaizen_router_assignments_dropped_total") == 0
    finally:
        gateway.stop()
        store.stop()
