"""Ingest survives what production does to it: retries, a dying database, a killed API process.

The gateway runs as its own process (uvicorn) and PostgreSQL as a throwaway server this module
starts, so both can be stopped, killed and restarted while clients keep sending.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.store import migrate
from controllers.store.db import make_engine
from controllers.store.experiments import record_assignments
from controllers.store.models import Assignment, Feedback, IdempotencyKey, Run
from devstack.gateway import GatewayProcess
from devstack.postgres import ThrowawayPostgres

SECRET = "durability-secret"
TOKEN = {"Authorization": f"Bearer {auth.issue(SECRET, 'load', 3600, role=Role.ADMIN)}"}


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres(tmp_path / "pg")
    server.start()
    migrate.upgrade(server.url)
    yield server
    server.stop()


@pytest.fixture
def gateway(own_postgres: ThrowawayPostgres, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(own_postgres.url, SECRET, tmp_path / "gateway.log")
    process.start()
    yield process
    process.stop()


def body(key: str) -> dict[str, Any]:
    return {
        "runs": [
            {
                "agent": "load",
                "taskId": key,
                "prompt": f"task {key}",
                "output": f"answer {k}",
                "signals": {"compileOk": True},
            }
            for k in range(2)
        ]
    }


def rows(server: ThrowawayPostgres) -> tuple[int, int, int]:
    engine = make_engine(server.url)
    with engine.connect() as connection:
        runs = connection.scalar(select(func.count()).select_from(Run)) or 0
        distinct = connection.scalar(select(func.count(func.distinct(Run.task_id)))) or 0
        keys = connection.scalar(select(func.count()).select_from(IdempotencyKey)) or 0
    engine.dispose()
    return int(runs), int(distinct), int(keys)


def test_fifty_concurrent_requests_with_one_key_make_one_write(
    gateway: GatewayProcess, own_postgres: ThrowawayPostgres
) -> None:
    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=gateway.url, timeout=30, limits=httpx.Limits(max_connections=50)
        ) as c:
            headers = {**TOKEN, "Idempotency-Key": "same"}
            return await asyncio.gather(
                *(c.post("/v1/runs/batch", json=body("same"), headers=headers) for _ in range(50))
            )

    responses = asyncio.run(fire())
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 49
    assert rows(own_postgres) == (2, 1, 1)


def test_database_down_is_a_503_with_retry_after_and_nothing_half_written(
    gateway: GatewayProcess, own_postgres: ThrowawayPostgres
) -> None:
    headers = {**TOKEN, "Idempotency-Key": "k1"}
    assert httpx.post(f"{gateway.url}/v1/runs/batch", json=body("a"), headers=headers).status_code == 200
    own_postgres.stop()
    down = httpx.post(
        f"{gateway.url}/v1/runs/batch", json=body("b"), headers={**TOKEN, "Idempotency-Key": "k2"}, timeout=30
    )
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) > 0
    assert "nothing was written" in down.json()["error"]
    assert httpx.get(f"{gateway.url}/readyz", timeout=30).status_code == 503
    own_postgres.start()
    again = httpx.post(
        f"{gateway.url}/v1/runs/batch", json=body("b"), headers={**TOKEN, "Idempotency-Key": "k2"}, timeout=30
    )
    assert again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") is None  # the failed attempt left no key behind
    assert rows(own_postgres) == (4, 2, 2)


def test_feedback_on_a_request_alone_with_the_database_down_is_a_503_and_nothing_half_written(
    gateway: GatewayProcess, own_postgres: ThrowawayPostgres
) -> None:
    engine = make_engine(own_postgres.url)
    row = {
        "namespace": "default", "request_id": "q1", "created_at": datetime.now(UTC), "experiment": "default/exp",
        "variant": "v", "served_variant": "v", "unit_hash": "h", "route": "coder", "allocation": '{"v":100}',
    }  # fmt: skip
    with Session(engine) as session, session.begin():
        record_assignments(session, [row])
    engine.dispose()
    feedback = {"feedback": [{"requestId": "q1", "thumbs": 1}]}
    headers = {**TOKEN, "Idempotency-Key": "f1"}
    own_postgres.stop()
    down = httpx.post(f"{gateway.url}/v1/feedback/batch", json=feedback, headers=headers, timeout=30)
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) > 0
    own_postgres.start()
    assert rated(own_postgres) == (0, None, 0)  # no feedback row, no verdict on the request, no key
    again = httpx.post(f"{gateway.url}/v1/feedback/batch", json=feedback, headers=headers, timeout=30)
    assert again.status_code == 200, again.text
    assert again.headers.get("Idempotent-Replayed") is None
    assert rated(own_postgres) == (1, 1.0, 1)


def rated(server: ThrowawayPostgres) -> tuple[int, float | None, int]:
    """(feedback rows, the request's reward, idempotency keys)."""
    engine = make_engine(server.url)
    with engine.connect() as connection:
        feedback = connection.scalar(select(func.count()).select_from(Feedback)) or 0
        reward = connection.scalar(select(Assignment.reward))
        keys = connection.scalar(select(func.count()).select_from(IdempotencyKey)) or 0
    engine.dispose()
    return int(feedback), reward, int(keys)


@dataclass
class Tally:
    done: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    bad_5xx: list[str] = field(default_factory=list)
    connection_errors: int = 0


def given_a_send_plan(total: int, retried_share: float, seed: int) -> list[str]:
    """One key per task, and a share of them sent again after they succeeded, as a client that lost
    the response would."""
    rng = random.Random(seed)
    keys = [f"key-{i}" for i in range(total)]
    return keys + rng.sample(keys, int(total * retried_share))


async def send(client: httpx.AsyncClient, key: str, tally: Tally, deadline: float) -> None:
    """Send ``key`` until it is answered 200, retrying connection errors and 503s with the same key."""
    while time.monotonic() < deadline:
        try:
            response = await client.post(
                "/v1/runs/batch", json=body(key), headers={**TOKEN, "Idempotency-Key": key}
            )
        except httpx.TransportError:
            tally.connection_errors += 1  # the API process is down: retry the same key
            await asyncio.sleep(0.05)
            continue
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            if response.status_code != 503 or "Retry-After" not in response.headers:
                tally.bad_5xx.append(f"{response.status_code} {response.headers} {response.text[:200]}")
            await asyncio.sleep(min(float(response.headers.get("Retry-After", "1")), 0.2))
            continue
        assert response.status_code == 200, response.text
        tally.done += 1
        return
    raise AssertionError(f"{key} never succeeded")


async def clients(url: str, plan: list[str], tally: Tally, deadline: float, concurrency: int) -> None:
    """``concurrency`` workers drain ``plan`` through one HTTP client."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for key in plan:
        queue.put_nowait(key)
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:

        async def worker() -> None:
            while not queue.empty():
                await send(client, queue.get_nowait(), tally, deadline)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def chaos(gateway: GatewayProcess, postgres: ThrowawayPostgres, tally: Tally) -> None:
    """Kill the API at 1000 answers, stop the database at 2200, kill the API again at 3800."""

    async def when(done: int) -> None:
        while tally.done < done:
            await asyncio.sleep(0.01)

    await when(1000)
    gateway.kill()
    await asyncio.sleep(0.5)
    await asyncio.to_thread(gateway.start)
    await when(2200)
    await asyncio.to_thread(postgres.stop)
    await asyncio.sleep(2.0)
    await asyncio.to_thread(postgres.start)
    await when(3800)
    gateway.kill()
    await asyncio.sleep(0.5)
    await asyncio.to_thread(gateway.start)


def when_the_plan_is_sent_through_the_chaos(
    gateway: GatewayProcess, postgres: ThrowawayPostgres, plan: list[str], concurrency: int
) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + 300

    async def main() -> None:
        await asyncio.gather(
            clients(gateway.url, plan, tally, deadline, concurrency), chaos(gateway, postgres, tally)
        )

    asyncio.run(main())
    return tally


def test_five_thousand_requests_through_outages_and_kills_lose_and_duplicate_nothing(
    gateway: GatewayProcess, own_postgres: ThrowawayPostgres
) -> None:
    total = 5000
    plan = given_a_send_plan(total, retried_share=0.2, seed=5)
    tally = when_the_plan_is_sent_through_the_chaos(gateway, own_postgres, plan, concurrency=16)
    runs, distinct_tasks, stored_keys = rows(own_postgres)
    assert tally.done == len(plan)
    assert tally.bad_5xx == []
    assert tally.statuses[503] > 0, "the database outage was never seen: the test did not test it"
    assert tally.connection_errors > 0, "the API was never seen down: the test did not test it"
    assert (runs, distinct_tasks, stored_keys) == (2 * total, total, total)
    print(f"\nrequests answered: {dict(tally.statuses)}; connection errors: {tally.connection_errors}")
