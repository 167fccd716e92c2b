"""Ingest throughput: records/s through Kaizen's HTTP API into PostgreSQL, against a naive baseline.

Baseline: the ORM used the obvious way — one ``session.add`` + ``commit`` per record, reward computed
the same way. Kaizen: batches of 500 records posted to the gateway (a uvicorn process) by 4
concurrent clients, each batch one transaction with its Idempotency-Key. Both write the same kind of
records into the same throwaway PostgreSQL server, in the same run.

    .venv/bin/python bench/ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from controllers.api.identity import Role
from controllers.data.reward import RewardWeights, Signals, compute_reward
from controllers.gateway import auth
from controllers.store import migrate
from controllers.store.db import make_engine, session_factory
from controllers.store.models import Run
from devstack.gateway import GatewayProcess
from devstack.postgres import ThrowawayPostgres

SECRET = "bench-secret"


def record(i: int) -> dict[str, object]:
    return {
        "agent": "coder",
        "role": "coder",
        "taskId": f"task-{i % 997}",
        "attempt": 1 + i % 3,
        "prompt": f"Implement function number {i} so that its tests pass. " * 3,
        "output": f"def solution_{i}(x):\n    return x * {i % 17} + 1\n" * 4,
        "signals": {"compileOk": i % 5 != 0, "testsPassed": i % 4, "testsTotal": 4, "lintErrors": i % 3},
    }


def naive_orm(url: str, count: int) -> float:
    factory = session_factory(make_engine(url))
    weights = RewardWeights()
    started = time.perf_counter()
    for i in range(count):
        r = record(i)
        s = r["signals"]
        assert isinstance(s, dict)
        reward = compute_reward(
            Signals(
                compile_ok=s["compileOk"],
                tests_passed=s["testsPassed"],
                tests_total=s["testsTotal"],
                lint_errors=s["lintErrors"],
            ),
            weights,
        )
        with factory() as session:
            session.add(
                Run(
                    id=f"naive-{i}",
                    created_at=datetime.now(UTC),
                    agent="coder",
                    role="coder",
                    task_id=str(r["taskId"]),
                    task_family="",
                    model_variant="",
                    prompt_variant="",
                    attempt=int(r["attempt"]),
                    prompt=str(r["prompt"]),
                    output=str(r["output"]),
                    compile_ok=s["compileOk"],
                    tests_passed=s["testsPassed"],
                    tests_total=s["testsTotal"],
                    lint_errors=s["lintErrors"],
                    reward=reward,
                )
            )
            session.commit()
    return count / (time.perf_counter() - started)


async def through_api(base_url: str, count: int, batch: int = 500, concurrency: int = 4) -> float:
    headers = {"Authorization": f"Bearer {auth.issue(SECRET, 'bench', 3600, role=Role.ADMIN)}"}
    batches = [list(range(start, min(start + batch, count))) for start in range(0, count, batch)]
    queue: asyncio.Queue[list[int]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                ids = queue.get_nowait()
                response = await client.post(
                    "/v1/runs/batch",
                    json={"runs": [record(i) for i in ids]},
                    headers={**headers, "Idempotency-Key": f"bench-{ids[0]}"},
                )
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run, same figures")
    args = parser.parse_args()
    naive_count, api_count = (1_500, 20_000) if args.quick else (5_000, 100_000)
    with tempfile.TemporaryDirectory() as tmp:
        server = ThrowawayPostgres(Path(tmp) / "pg")
        server.start()
        gateway = GatewayProcess(server.url, SECRET, Path(tmp) / "gateway.log")
        try:
            migrate.upgrade(server.url)
            gateway.start()
            asyncio.run(through_api(gateway.url, 2_000))  # warm-up: connections, caches
            baseline = naive_orm(server.url, naive_count)
            kaizen = asyncio.run(through_api(gateway.url, api_count))
        finally:
            gateway.stop()
            server.stop()
    print(f"naive ORM, one row per transaction : {baseline:10,.0f} records/s ({naive_count:,} records)")
    print(f"Kaizen HTTP API, batches of 500    : {kaizen:10,.0f} records/s ({api_count:,} records)")
    print(f"RESULT ingest speedup={kaizen / baseline:.1f} goal>=10")


if __name__ == "__main__":
    main()
