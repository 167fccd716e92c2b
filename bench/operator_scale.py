"""Operator memory and create-to-status latency with 1,000 custom resources against 10.

For each size, in its own namespace with a fresh operator process (production polling: policies every
30 s, the rest every 5 s): create N LearningPolicies, wait until every one has a status, let the
timers run a full cycle, then create 20 probe policies one at a time and time each from the create
call returning to the watch event that shows its status carrying observedGeneration (a watch opened
before the create, so the time is the event's, not a polling interval's). Memory is the operator's
resident set after the cycle. Both sizes run in the same process, side by side.

    .venv/bin/python bench/operator_scale.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controllers.gateway import auth
from controllers.store import migrate
from devstack.controlplane import ControlPlane
from devstack.operator import OperatorProcess

PROBES = 20


def policy(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "LearningPolicy",
        "metadata": {"name": name},
        "spec": {
            "track": {"agent": name},
            "paused": True,
            "training": {"baseModel": {"name": "base", "uri": "file:///models/base"}},
        },
    }


class Api:
    def __init__(self, plane: ControlPlane) -> None:
        self.client = httpx.Client(
            base_url=plane.server, verify=False, headers=plane.auth_headers(), timeout=60
        )

    def path(self, namespace: str, name: str = "") -> str:
        return (
            f"/apis/kaizen.dev/v1alpha1/namespaces/{namespace}/learningpolicies{'/' + name if name else ''}"
        )

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        self.client.post(self.path(namespace), json=body).raise_for_status()

    def converged(self, namespace: str) -> int:
        items = self.client.get(self.path(namespace)).json()["items"]
        return sum(
            1
            for i in items
            if (i.get("status") or {}).get("observedGeneration") == i["metadata"]["generation"]
        )

    def time_to_status(self, namespace: str, body: dict[str, Any]) -> float:
        """Create ``body`` and return the seconds from the create call returning to the watch event
        that carries its first status for its generation."""
        name = body["metadata"]["name"]
        version = self.client.get(self.path(namespace), params={"limit": "1"}).json()["metadata"]
        params = {
            "watch": "1",
            "resourceVersion": version["resourceVersion"],
            "fieldSelector": f"metadata.name={name}",
            "timeoutSeconds": "60",
        }
        with self.client.stream("GET", self.path(namespace), params=params) as events:
            self.create(namespace, body)
            created = time.monotonic()
            for line in events.iter_lines():
                obj = json.loads(line)["object"]
                status = obj.get("status") or {}
                if status.get("observedGeneration") == obj["metadata"]["generation"]:
                    return time.monotonic() - created
        raise RuntimeError(f"{name} got no status within 60 s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(
    size: int, plane: ControlPlane, api: Api, database_url: str, work: Path, poll: float
) -> tuple[float, float]:
    namespace = f"scale-{size}-{uuid.uuid4().hex[:4]}"
    plane.kubectl("create", "namespace", namespace)
    operator = OperatorProcess(
        kubeconfig=plane.kubeconfig, database_url=database_url, gateway_url="http://127.0.0.1:9",
        gateway_token=auth.issue("x", "bench", 3600), data_root=work / "data", log=work / f"operator-{size}.log",
        lease_namespace=namespace, namespaces=(namespace,), poll_seconds=poll, policy_poll_seconds=30.0,
    )  # fmt: skip
    operator.start()
    try:
        started = time.monotonic()
        for index in range(size):
            api.create(namespace, policy(f"p-{index:05d}"))
        while api.converged(namespace) < size:
            time.sleep(0.5)
        print(f"  {size}: all {size} have a status after {time.monotonic() - started:.1f}s")
        time.sleep(35)  # one full policy timer cycle and several of the others
        assert operator.pid is not None
        memory = rss_mib(operator.pid)
        latencies = []
        for index in range(PROBES):
            latencies.append(api.time_to_status(namespace, policy(f"probe-{index:03d}")))
            time.sleep(0.2)
        p95 = statistics.quantiles(latencies, n=20)[-1]
        print(
            f"  {size}: operator RSS {memory:.0f} MiB, create-to-status p95 {p95:.3f}s (median {statistics.median(latencies):.3f}s)"
        )
        return memory, p95
    finally:
        operator.stop()
        plane.kubectl("delete", "namespace", namespace, "--wait=false")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 resources instead of 1,000")
    args = parser.parse_args()
    large = 200 if args.quick else 1000
    work = Path(tempfile.mkdtemp(prefix="kaizen-scale-"))
    plane = ControlPlane(work / "plane")
    plane.start()
    try:
        plane.install_crds(sorted((Path(__file__).resolve().parent.parent / "crds").glob("*.yaml")))
        database_url = f"sqlite:///{work / 'kaizen.db'}"
        migrate.upgrade(database_url)
        api = Api(plane)
        print(f"10 vs {large} LearningPolicies, {PROBES} probes each; fresh operator per size")
        small_memory, small_p95 = measure(10, plane, api, database_url, work, poll=5.0)
        large_memory, large_p95 = measure(large, plane, api, database_url, work, poll=5.0)
        print(f"RESULT operator_scale memory_ratio={large_memory / small_memory:.2f} goal<=1.3")
        print(f"RESULT operator_scale p95_latency_ratio={large_p95 / small_p95:.2f} goal<=2")
        return 0
    finally:
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
