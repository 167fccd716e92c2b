"""The router tier: a gateway process in front of OpenAI-compatible upstreams, on a real database.

One upstream process plays every variant through personas (``/<persona>/v1``): two healthy models,
one that answers 500, one too slow for the route's timeout, one that paces its tokens, one that cuts
its stream. A dead loopback port plays the variant whose server is gone. Each test puts its own
route, so tests share the gateway without seeing each other's traffic.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.store import migrate
from controllers.store.db import make_engine
from controllers.store.models import Assignment
from devstack.gateway import GatewayProcess
from devstack.ports import free_port
from devstack.postgres import ThrowawayPostgres
from devstack.upstream import UpstreamProcess
from tests.conftest import fresh_database

SECRET = "router-secret"
UPSTREAM_HOSTS = "127.0.0.1"  # the upstream stand-in listens on loopback, which the default allowlist refuses
TOKEN = {
    "Authorization": f"Bearer {auth.issue(SECRET, 'router-tests', 3600, role=Role.ADMIN, namespaces=['*'])}"
}
PERSONAS: dict[str, dict[str, Any]] = {
    "default": {},
    "champion": {},
    "challenger": {},
    "broken": {"fail": 500},
    # Slow: well past the fallback test's 2 s route timeout. Paced: 0.3 s between events, so that a
    # stall of a loaded machine's scheduler does not merge events into one read of the client's.
    "slow": {"delay": 10.0},
    "paced": {"token_delay": 0.3, "tokens": 10},
    "cut": {"break_after": 3},
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamProcess]:
    process = UpstreamProcess(tmp_path_factory.mktemp("upstream") / "upstream.log", PERSONAS)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def shared_url(postgres: ThrowawayPostgres) -> str:
    url = fresh_database(postgres)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def gateway(shared_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        shared_url,
        SECRET,
        tmp_path_factory.mktemp("gateway") / "gateway.log",
        route_allowed_hosts=UPSTREAM_HOSTS,
    )
    process.start()
    yield process
    process.stop()


def dead_endpoint() -> str:
    """A base URL where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}/v1"


def route(
    name: str, champion: str, challenger: str | None = None, weight: int = 50, **extra: Any
) -> dict[str, Any]:
    """A two-variant route body (``challenger`` gets ``weight`` percent), experiment named after it."""
    variants = [{"name": "champion", "endpoint": champion, "weight": 100 - weight, "champion": True}]
    if challenger is not None:
        variants.append({"name": "challenger", "endpoint": challenger, "weight": weight})
    else:
        variants[0]["weight"] = 100
    return {"namespace": "team", "name": name, "experiment": f"exp-{name}", "variants": variants, **extra}


def put_route(gateway: GatewayProcess, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.put(
        f"{gateway.url}/v1/routes/{body['namespace']}/{body['name']}", json=body, headers=TOKEN
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def chat(name: str, content: str = "add two numbers", **extra: Any) -> tuple[str, dict[str, Any]]:
    """The proxy path of route ``team/<name>`` and a chat completion body."""
    body = {"model": "base", "messages": [{"role": "user", "content": content}], **extra}
    return f"/openai/team/{name}/v1/chat/completions", body


def assignments(url: str, experiment: str, expected: int, timeout: float = 10.0) -> list[Assignment]:
    """The experiment's assignment rows, once ``expected`` of them are written (they are flushed async)."""
    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with Session(engine) as session:
                rows = list(session.scalars(select(Assignment).where(Assignment.experiment == experiment)))
            if len(rows) >= expected or time.monotonic() > deadline:
                assert len(rows) == expected, f"{len(rows)} assignment rows, expected {expected}"
                return rows
            time.sleep(0.05)
    finally:
        engine.dispose()


def read_stream(response: httpx.Response) -> list[dict[str, Any] | str]:
    """The ``data:`` events of an SSE body: JSON documents, and the closing ``[DONE]``."""
    events: list[dict[str, Any] | str] = []
    for block in response.text.split("\n\n"):
        if block.startswith("data: "):
            payload = block[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events
