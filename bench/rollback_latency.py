"""Time from the decisive sample to the challenger's weight at 0 in the router.

The real parts, as in production: a kube-apiserver, the operator process (experiments polled every
second, its default), the gateway/router on PostgreSQL and an OpenAI-compatible upstream. Each trial
creates an Experiment whose challenger regresses, sends requests through the router and reports each
run's reward in batches of 10; after every batch the benchmark asks the same planner the operator
uses (``controllers.decisions.experiments.rollout.plan``) whether the store's evidence now says RollBack — that
batch is the decisive sample. The clock runs from that batch's POST returning to the router's route
showing the challenger at 0 % (polled every 10 ms).

The comparison is Flagger's default analysis (interval 1 m, threshold 5 failed checks): at best five
minutes from the moment a regression is visible, whatever the statistics. That figure is computed
from Flagger's documented defaults, not measured here (no Flagger on this machine).

    .venv/bin/python bench/rollback_latency.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controllers.api.experiment import ExperimentSpec
from controllers.api.identity import Role
from controllers.decisions.experiments.rollout import plan
from controllers.gateway import auth
from controllers.store import migrate
from controllers.store.db import make_engine, session_factory, transaction
from controllers.store.experiment_traffic import traffic
from devstack.controlplane import ControlPlane
from devstack.gateway import GatewayProcess
from devstack.operator import OperatorProcess
from devstack.postgres import ThrowawayPostgres
from devstack.upstream import UpstreamProcess

FLAGGER_DEFAULT_SECONDS = 60 * 5  # analysis interval 1m x threshold 5
NAMESPACE = "bench"


def experiment(name: str, upstream: UpstreamProcess) -> dict[str, Any]:
    return {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "strategy": "ABTest",
            "variants": [
                {"name": "champion", "role": "Champion", "endpoint": upstream.base("champion")},
                {"name": "challenger", "role": "Challenger", "endpoint": upstream.base("challenger")},
            ],
            "rollout": {"steps": [50], "minSamplesPerVariant": 30, "guardrails": [], "maxDuration": "1h"},
        },
    }


def trial(
    name: str,
    plane: ControlPlane,
    gateway: GatewayProcess,
    token: str,
    upstream: UpstreamProcess,
    factory: Any,
    seed: int,
) -> float:
    body = experiment(name, upstream)
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    spec = ExperimentSpec.model_validate(body["spec"])
    headers = {"Authorization": f"Bearer {token}"}
    route_url = f"{gateway.url}/v1/routes/{NAMESPACE}/{name}"
    with httpx.Client(timeout=30) as client:
        deadline = time.monotonic() + 60
        while client.get(route_url, headers=headers).status_code != 200:  # the operator sets the route
            if time.monotonic() > deadline:
                raise TimeoutError(f"no route for {name}; see the operator log")
            time.sleep(0.05)
        rng = random.Random(seed)
        for batch in range(200):
            runs = []
            for i in range(10):
                user = f"u{seed}-{batch}-{i}"
                answer = client.post(
                    f"{gateway.url}/openai/{NAMESPACE}/{name}/v1/chat/completions",
                    headers={**headers, "X-Kaizen-User": user},
                    json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
                )
                answer.raise_for_status()
                worse = answer.headers["X-Kaizen-Variant"] == "challenger"
                passed = sum(rng.random() < (0.3 if worse else 0.7) for _ in range(10))
                runs.append({"agent": "bench", "task_id": user, "prompt": "hi", "output": "x",
                             "request_id": answer.headers["X-Kaizen-Request-Id"],
                             "signals": {"tests_passed": passed, "tests_total": 10}})  # fmt: skip
            client.post(
                f"{gateway.url}/v1/runs/batch",
                json={"runs": runs},
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            ).raise_for_status()
            posted = time.monotonic()
            with transaction(factory) as session:
                seen = traffic(session, f"{NAMESPACE}/{name}")
            if plan(spec, None, seen, datetime.now(UTC)).decision.value != "RollBack":
                continue
            while time.monotonic() - posted < 30:
                route = client.get(route_url, headers=headers).json()
                weights = {v["name"]: v["weight"] for v in route["config"]["variants"]}
                if weights["challenger"] == 0:
                    return time.monotonic() - posted
                time.sleep(0.01)
            raise TimeoutError(f"{name}: decisive evidence, but the router still sends traffic after 30s")
    raise RuntimeError(f"{name}: never decisive")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 trials instead of 10")
    args = parser.parse_args()
    trials = 3 if args.quick else 10
    work = Path(tempfile.mkdtemp(prefix="kaizen-rollback-"))
    plane, postgres = ControlPlane(work / "plane"), ThrowawayPostgres(work / "pg")
    plane.start()
    postgres.start()
    started: list[Any] = [plane, postgres]
    try:
        plane.install_crds(sorted((Path(__file__).resolve().parent.parent / "crds").glob("*.yaml")))
        plane.kubectl("create", "namespace", NAMESPACE)
        url = postgres.url
        migrate.upgrade(url)
        secret = uuid.uuid4().hex
        gateway = GatewayProcess(url, secret, work / "gateway.log")
        gateway.start()
        started.append(gateway)
        upstream = UpstreamProcess(work / "upstream.log", personas={"champion": {}, "challenger": {}})
        upstream.start()
        started.append(upstream)
        token = auth.issue(secret, "bench", 3600, role=Role.ADMIN, namespaces=(NAMESPACE,))
        operator = OperatorProcess(
            kubeconfig=plane.kubeconfig, database_url=url, gateway_url=gateway.url, gateway_token=token,
            data_root=work / "data", log=work / "operator.log", lease_namespace=NAMESPACE,
            namespaces=(NAMESPACE,), experiment_poll_seconds=1.0,
        )  # fmt: skip
        operator.start()
        started.append(operator)
        factory = session_factory(make_engine(url))
        print(
            f"{trials} trials; operator polls experiments every 1s (its default); routes read back every 10ms"
        )
        latencies = []
        for index in range(trials):
            seconds = trial(f"regression-{index}", plane, gateway, token, upstream, factory, seed=index)
            latencies.append(seconds)
            print(f"  trial {index + 1}: challenger at 0% {seconds:.3f}s after the decisive batch")
        median = statistics.median(latencies)
        print(
            f"median {median:.3f}s, worst {max(latencies):.3f}s; Flagger default analysis: >= {FLAGGER_DEFAULT_SECONDS}s"
        )
        print(f"RESULT rollback_latency median_seconds={median:.3f} goal<=2")
        print(
            f"RESULT rollback_latency ratio_vs_flagger_default={median / FLAGGER_DEFAULT_SECONDS:.4f} goal<=0.01"
        )
        return 0
    finally:
        for part in reversed(started):
            part.stop()


if __name__ == "__main__":
    sys.exit(main())
