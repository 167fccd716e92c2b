"""What the router adds to a model call: direct vs through the gateway, side by side in one run.

A local OpenAI-compatible upstream (uvicorn) answers a small chat completion; the same keep-alive
client calls it directly and through the router (a gateway process with a two-variant experiment
route, assignments recorded to SQLite as in the embedded default), alternating request by request
so that both see the same machine load. The headline is the difference of the medians, for a short
chat and for a 100 kB prompt (what coding agents send: the router must not pay per prompt byte).

    .venv/bin/python bench/router_latency.py [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.store import migrate
from controllers.store.db import make_engine
from controllers.store.models import Assignment
from devstack.gateway import GatewayProcess
from devstack.upstream import UpstreamProcess

SECRET = "bench-secret"
TOKEN = {"Authorization": f"Bearer {auth.issue(SECRET, 'bench', 3600, role=Role.ADMIN, namespaces=['*'])}"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


PROMPT_100KB = "def add(a, b):\n    return a + b  # a line of an agent's context\n" * 1600


def chat(i: int, content: str) -> dict[str, Any]:
    return {
        "model": "base",
        "user": f"user-{i % 500}",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": content}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--requests", type=int, default=None, help="measured small requests per side")
    args = parser.parse_args()
    measured = args.requests or (300 if args.quick else 3000)
    warmup = 50 if args.quick else 300
    large = max(50, measured // 3)

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        url = f"sqlite:///{work / 'kaizen.db'}"
        migrate.upgrade(url)
        upstream = UpstreamProcess(work / "upstream.log")
        gateway = GatewayProcess(url, SECRET, work / "gateway.log")
        upstream.start()
        gateway.start()
        try:
            put_route(upstream, gateway)
            small = run(upstream, gateway, warmup, measured, "Write a function that adds two numbers.")
            big = run(upstream, gateway, warmup // 5, large, PROMPT_100KB)
            recorded = count_assignments(url)
        finally:
            gateway.stop()
            upstream.stop()

    print(
        f"interleaved direct/router calls, one keep-alive client, after warm-up; {recorded} assignments recorded"
    )
    print(f"{'':26} {'median ms':>10} {'p95 ms':>10} {'p99 ms':>10}")
    for label, (direct, routed) in (("short chat", small), (f"{len(PROMPT_100KB) // 1000} kB prompt", big)):
        for name, values in (("direct", direct), ("router", routed)):
            print(
                f"{label + ' ' + name:26} {statistics.median(values):10.3f} {percentile(values, 0.95):10.3f} "
                f"{percentile(values, 0.99):10.3f}"
            )
    overhead = statistics.median(small[1]) - statistics.median(small[0])
    overhead_large = statistics.median(big[1]) - statistics.median(big[0])
    p95 = percentile(small[1], 0.95) - percentile(small[0], 0.95)
    print(f"short chat: {measured} requests per side; p95 overhead {p95:.3f} ms (CPU contention shows here)")
    print(f"RESULT router_latency median_overhead_ms={overhead:.3f} goal<=2")
    print(f"RESULT router_latency median_overhead_100kb_prompt_ms={overhead_large:.3f} goal<=2")


def put_route(upstream: UpstreamProcess, gateway: GatewayProcess) -> None:
    route = {
        "namespace": "bench",
        "name": "coder",
        "experiment": "bench-coder",
        "unit": "User",
        "variants": [
            {"name": "champion", "endpoint": upstream.base(), "weight": 50, "champion": True},
            {"name": "challenger", "endpoint": upstream.base(), "weight": 50},
        ],
        "timeout_seconds": 10,
    }
    httpx.put(f"{gateway.url}/v1/routes/bench/coder", json=route, headers=TOKEN).raise_for_status()


def run(
    upstream: UpstreamProcess, gateway: GatewayProcess, warmup: int, measured: int, content: str
) -> tuple[list[float], list[float]]:
    """Alternate direct and routed calls (which goes first alternates too); returns their times in ms."""
    direct_url = f"{upstream.base()}/chat/completions"
    routed_url = f"{gateway.url}/openai/bench/coder/v1/chat/completions"
    direct: list[float] = []
    routed: list[float] = []
    with httpx.Client(timeout=30) as client:
        for i in range(warmup + measured):
            body = json.dumps(chat(i, content)).encode()
            headers = {"content-type": "application/json"}
            order = ((direct_url, direct, headers), (routed_url, routed, {**headers, **TOKEN}))
            for target, sink, sent in order if i % 2 else reversed(order):
                started = time.perf_counter()
                response = client.post(target, content=body, headers=sent)
                elapsed = (time.perf_counter() - started) * 1000.0
                response.raise_for_status()
                if i >= warmup:
                    sink.append(elapsed)
    return direct, routed


def count_assignments(url: str) -> int:
    time.sleep(0.5)  # the recorder flushes every 100 ms
    engine = make_engine(url)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(Assignment)) or 0
    engine.dispose()
    return int(count)


if __name__ == "__main__":
    main()
