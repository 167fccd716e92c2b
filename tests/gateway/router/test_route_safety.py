"""Routes the router must never serve: refused before they are stored, and skipped when they are
stored anyway (written straight into the database), without stopping any replica."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from controllers.api.routes import RouteConfig
from controllers.store.db import make_engine, session_factory, transaction
from controllers.store.experiments import put_route as store_route
from devstack.gateway import GatewayProcess
from devstack.upstream import UpstreamProcess
from tests.gateway.router.conftest import SECRET, TOKEN, UPSTREAM_HOSTS, chat, put_route, route


def refused(gateway: GatewayProcess, body: dict[str, Any]) -> dict[str, Any]:
    """PUT ``body``: a 422 whose problems are returned, and nothing stored."""
    url = f"{gateway.url}/v1/routes/{body['namespace']}/{body['name']}"
    response = httpx.put(url, json=body, headers=TOKEN)
    assert response.status_code == 422, response.text
    assert httpx.get(url, headers=TOKEN).status_code == 404
    return dict(response.json())


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/v1",
        "http://[::1]:8080/v1",
        "https://kubernetes.default.svc/api/v1",
    ],
)
def test_an_endpoint_outside_the_allowlist_is_refused_naming_the_field_and_the_setting(
    gateway: GatewayProcess, upstream: UpstreamProcess, endpoint: str
) -> None:
    answer = refused(gateway, route("ssrf", upstream.base("champion"), endpoint))
    assert [p["field"] for p in answer["problems"]] == ["variants[1].endpoint"]
    assert "is not an allowed upstream host" in answer["problems"][0]["message"]
    assert "KAIZEN_ROUTE_ALLOWED_HOSTS" in answer["error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "::::"}, "variants[1].endpoint"),
        ({"endpoint": "file:///etc/passwd"}, "variants[1].endpoint"),
        ({"endpoint": "http://user:pw@127.0.0.1:9/v1"}, "variants[1].endpoint"),
        ({"endpoint": "http://127.0.0.1:9/v1?x=1"}, "variants[1].endpoint"),
        ({"name": "chal\r\nlenger"}, "variants[1].name"),
        ({"name": "Challenger"}, "variants[1].name"),
    ],
)
def test_a_malformed_variant_is_refused_before_it_is_stored(
    gateway: GatewayProcess, upstream: UpstreamProcess, change: dict[str, str], field: str
) -> None:
    body = route("malformed", upstream.base("champion"), upstream.base("challenger"))
    body["variants"][1].update(change)
    assert [p["field"] for p in refused(gateway, body)["problems"]] == [field]


def test_an_experiment_name_with_a_line_break_is_refused(
    gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    body = route("crlf", upstream.base("champion"), experiment="exp\r\nSet-Cookie: a=b")
    assert [p["field"] for p in refused(gateway, body)["problems"]] == ["experiment"]


def bad_rows(url: str, upstream: UpstreamProcess) -> dict[str, str]:
    """Rows no PUT would store, by route name: the config documents as JSON text."""
    good = route("x", upstream.base("champion"), upstream.base("challenger"))
    rows = {}
    for name, variant in (
        ("bad-endpoint", {"endpoint": "::::"}),
        ("bad-header", {"name": "chal\r\nlenger"}),
        ("bad-host", {"endpoint": "http://169.254.169.254/v1"}),
    ):
        variants = [good["variants"][0], {**good["variants"][1], **variant}]
        rows[name] = json.dumps({**good, "name": name, "variants": variants})
    rows["bad-shape"] = json.dumps([1, 2])
    rows["bad-key"] = json.dumps({**good, "name": "somewhere-else"})
    if url.startswith("sqlite"):
        rows["bad-json"] = "{not json"
    return rows


def insert_rows(url: str, rows: dict[str, str]) -> None:
    """Straight into the routes table, past every check the API makes."""
    config = "CAST(:config AS JSON)" if url.startswith("postgresql") else ":config"
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for name, document in rows.items():
                connection.execute(
                    text(
                        "INSERT INTO routes (namespace, name, config, config_hash, version, updated_at) "
                        f"VALUES ('team', :name, {config}, :hash, 1, :now)"
                    ),
                    {"name": name, "config": document, "hash": name, "now": datetime.now(UTC)},
                )
    finally:
        engine.dispose()


def store_directly(url: str, body: dict[str, Any]) -> None:
    """A change another replica stored: this replica can only learn of it by polling."""
    engine = make_engine(url)
    try:
        with transaction(session_factory(engine)) as session:
            store_route(session, RouteConfig.model_validate(body))
    finally:
        engine.dispose()


def served_by(gateway: GatewayProcess, name: str, wanted: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    path, body = chat(name)
    while True:
        response = httpx.post(gateway.url + path, json=body, headers=TOKEN, timeout=10)
        if response.status_code == 200 and response.headers["x-kaizen-variant"] == wanted:
            return
        assert time.monotonic() < deadline, f"{name} never served by {wanted}: {response.status_code}"
        time.sleep(0.1)


def invalid_counts(gateway: GatewayProcess) -> dict[str, float]:
    metrics = httpx.get(f"{gateway.url}/metrics").text
    found = re.findall(
        r'^kaizen_router_route_rows_invalid_total\{route="([^"]*)"\} (\S+)$', metrics, re.MULTILINE
    )
    return {route: float(value) for route, value in found}


def test_malformed_rows_are_skipped_while_a_replica_keeps_refreshing_and_a_new_one_starts(
    store_url: str, upstream: UpstreamProcess, tmp_path: Path
) -> None:
    running = GatewayProcess(store_url, SECRET, tmp_path / "running.log", route_allowed_hosts=UPSTREAM_HOSTS)
    running.start()
    fresh = GatewayProcess(store_url, SECRET, tmp_path / "fresh.log", route_allowed_hosts=UPSTREAM_HOSTS)
    try:
        body = route("good", upstream.base("champion"), upstream.base("challenger"), weight=0, unit="Request")
        put_route(running, body)
        served_by(running, "good", "champion")
        rows = bad_rows(store_url, upstream)
        insert_rows(store_url, rows)

        body["variants"][0]["weight"], body["variants"][1]["weight"] = 0, 100
        store_directly(store_url, body)
        # The poll that met the bad rows went on, and so do the later ones.
        served_by(running, "good", "challenger")
        # Two more changes the replica must poll to serve: each bad version is still reported once.
        for champion_weight, wanted in ((100, "champion"), (0, "challenger")):
            body["variants"][0]["weight"], body["variants"][1]["weight"] = (
                champion_weight,
                100 - champion_weight,
            )
            store_directly(store_url, body)
            served_by(running, "good", wanted)
        assert invalid_counts(running) == {f"team/{name}": 1.0 for name in rows}
        log = (tmp_path / "running.log").read_text()
        assert "route 'team/bad-endpoint' version 1 skipped" in log

        fresh.start()  # a replica starting on this database serves the good routes
        served_by(fresh, "good", "challenger", timeout=2.0)
        assert invalid_counts(fresh) == {f"team/{name}": 1.0 for name in rows}
        listed = httpx.get(f"{fresh.url}/v1/routes", headers=TOKEN).json()["routes"]
        # A row that parses is listed as stored; the allowlist still keeps the proxy from it.
        assert [r["config"]["name"] for r in listed] == ["bad-host", "good"]
        path, chat_body = chat("bad-host")
        assert httpx.post(fresh.url + path, json=chat_body, headers=TOKEN).status_code == 404
        broken = httpx.get(f"{fresh.url}/v1/routes/team/bad-endpoint", headers=TOKEN)
        assert broken.status_code == 409
        assert "PUT a valid config to replace it" in broken.json()["error"]

        # A valid PUT over a bad row repairs it, on the replica that answered and the other one.
        repaired = route("bad-endpoint", upstream.base("champion"))
        put_route(fresh, repaired)
        served_by(fresh, "bad-endpoint", "champion", timeout=2.0)
        served_by(running, "bad-endpoint", "champion")
        assert httpx.get(f"{running.url}/healthz").status_code == 200
    finally:
        fresh.stop()
        running.stop()
