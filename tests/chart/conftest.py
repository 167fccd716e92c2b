"""The chart tier: the real Helm library against a real kube-apiserver.

One control plane serves the whole tier. The CRDs are *not* pre-installed: the chart installs them.
Two releases share it, in fixed namespaces so that the RBAC golden file is deterministic:
``kaizen`` in ``kaizen-system`` (cluster-wide mode, owns the CRDs) and ``kaizen-ns`` in
``kaizen-teams`` (namespaced mode watching ``team-a`` and ``team-b``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.controlplane import ControlPlane
from tests.chart import cluster
from tests.chart.chart import NAMESPACE, RELEASE, ci_values, merged

NAMESPACED_RELEASE = "kaizen-ns"
NAMESPACED_NAMESPACE = "kaizen-teams"
WATCHED = ("team-a", "team-b")
OTHER = "elsewhere"
SECRET_NAMES = ("kaizen-db", "judge-api-key", "kaizen-storage")

CLUSTER_VALUES: dict[str, Any] = ci_values("default")
# The namespaced CI values, less what needs CRDs this server lacks (ServiceMonitor) and the CRDs the
# cluster-wide release already owns.
NAMESPACED_VALUES: dict[str, Any] = merged(
    ci_values("namespaced"),
    {
        "crds": {"install": False},
        "serviceMonitor": {"enabled": False},
        "operator": {"watchNamespaces": list(WATCHED)},
        "rbac": {"secretNames": list(SECRET_NAMES)},
    },
)


@pytest.fixture(scope="session")
def chart_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("chart-control-plane"))
    plane.start()
    try:
        for namespace in (NAMESPACE, NAMESPACED_NAMESPACE, *WATCHED, OTHER, "monitoring"):
            plane.kubectl("create", "namespace", namespace)
        yield plane
    except BaseException:
        _dump_log(plane.workdir)
        raise
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def cluster_release(chart_plane: ControlPlane) -> dict[str, Any]:
    """The chart installed cluster-wide with the smallest valid values."""
    return cluster.install(chart_plane, RELEASE, NAMESPACE, CLUSTER_VALUES)


@pytest.fixture(scope="session")
def namespaced_release(chart_plane: ControlPlane, cluster_release: dict[str, Any]) -> dict[str, Any]:
    """A second release in namespaced mode (after the first, whose CRDs it relies on)."""
    return cluster.install(chart_plane, NAMESPACED_RELEASE, NAMESPACED_NAMESPACE, NAMESPACED_VALUES)


def _dump_log(workdir: Path) -> None:
    log = workdir / "kube-apiserver.log"
    if log.exists():
        print(f"\n--- kube-apiserver.log (tail) ---\n{log.read_text()[-4000:]}")
