"""The local API server as the chart's target: Helm releases, a stand-in Job controller, SA tokens.

The control plane runs no controllers, so nothing would ever finish the migration hook Job and
``helm install`` would wait on it forever. ``JobCompleter`` does what the Job controller reports for
a pod that exited 0 (status ``succeeded: 1`` and a ``Complete`` condition), which is all Helm reads.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import helm_python as helm

from devstack.controlplane import ControlPlane
from tests.chart.chart import CHART_DIR


class JobCompleter:
    """Marks every Job in the cluster Complete, as the Job controller would after its pod succeeded."""

    def __init__(self, plane: ControlPlane, interval: float = 0.2) -> None:
        self.plane = plane
        self.interval = interval
        self.completed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-completer", daemon=True)

    def __enter__(self) -> JobCompleter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            listing = self.plane.kubectl("get", "jobs", "--all-namespaces", "-o", "json", check=False)
            if listing.returncode == 0:
                for job in json.loads(listing.stdout)["items"]:
                    self._complete(job)
            self._stop.wait(self.interval)

    def _complete(self, job: dict[str, Any]) -> None:
        conditions = (job.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Complete" for c in conditions):
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {
            "conditions": [
                {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now}
            ],
            "succeeded": 1,
            "startTime": now,
            "completionTime": now,
        }
        meta = job["metadata"]
        patched = self.plane.kubectl(
            "patch", "job", meta["name"], "-n", meta["namespace"], "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}), check=False,
        )  # fmt: skip
        if patched.returncode == 0:
            self.completed.append(f"{meta['namespace']}/{meta['name']}@{meta['uid']}")


@contextmanager
def helm_config(plane: ControlPlane, namespace: str) -> Iterator[helm.Config]:
    """A Helm client for ``namespace`` that authenticates as the cluster admin."""
    config = helm.Config(kubeconfig_path=str(plane.kubeconfig), namespace=namespace)
    try:
        yield config
    finally:
        config.close()


def install(plane: ControlPlane, release: str, namespace: str, values: dict[str, Any]) -> dict[str, Any]:
    with JobCompleter(plane), helm_config(plane, namespace) as config:
        return config.install(str(CHART_DIR), release, values, timeout=120)


def upgrade(plane: ControlPlane, release: str, namespace: str, values: dict[str, Any]) -> dict[str, Any]:
    with JobCompleter(plane), helm_config(plane, namespace) as config:
        return config.upgrade(str(CHART_DIR), release, values, timeout=120)


def get_json(plane: ControlPlane, *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(plane.kubectl("get", *args, "-o", "json").stdout)
    return document


def service_account_token(plane: ControlPlane, namespace: str, name: str, audience: str = "") -> str:
    """A short-lived token for the ServiceAccount from the TokenRequest API, as the kubelet would mount
    (``audience``: as a projected volume mints it for that audience; empty: the API server's)."""
    extra = [f"--audience={audience}"] if audience else []
    return plane.kubectl("create", "token", name, "-n", namespace, "--duration=10m", *extra).stdout.strip()
