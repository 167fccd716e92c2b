"""What the operator's ServiceAccount may do, checked with its own token against the API server.

The golden file holds ``kubectl auth can-i --list`` for the operator in each mode and namespace; a
change to the chart's RBAC shows up as a diff in review. Regenerate it after an intended change with
``KAIZEN_UPDATE_GOLDEN=1 .venv/bin/pytest tests/chart/test_rbac.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from devstack.controlplane import ControlPlane
from tests.chart import cluster
from tests.chart.chart import NAMESPACE, RELEASE, ci_values, find, render
from tests.chart.conftest import NAMESPACED_NAMESPACE, NAMESPACED_RELEASE, OTHER, SECRET_NAMES, WATCHED
from tests.schemas import ROOT

GOLDEN = ROOT / "tests" / "chart" / "golden" / "operator-can-i.txt"
CLUSTER_SA = (NAMESPACE, f"{RELEASE}-operator")
NAMESPACED_SA = (NAMESPACED_NAMESPACE, f"{NAMESPACED_RELEASE}-operator")
# (mode, ServiceAccount, namespace asked about)
VIEWS = [
    ("cluster-wide", CLUSTER_SA, NAMESPACE),
    ("cluster-wide", CLUSTER_SA, WATCHED[0]),
    ("namespaced", NAMESPACED_SA, NAMESPACED_NAMESPACE),
    ("namespaced", NAMESPACED_SA, WATCHED[0]),
    ("namespaced", NAMESPACED_SA, OTHER),
]


class AsOperator:
    """kubectl authenticated with a ServiceAccount token from the TokenRequest API (no admin config)."""

    def __init__(self, plane: ControlPlane, service_account: tuple[str, str]) -> None:
        self.plane = plane
        self.token = cluster.service_account_token(plane, *service_account)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [
            "kubectl",
            f"--server={self.plane.server}",
            f"--token={self.token}",
            "--insecure-skip-tls-verify=true",
            *args,
        ]
        environment = {**os.environ, "KUBECONFIG": str(self.plane.workdir / "no-kubeconfig")}
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, env=environment, check=False, timeout=60
        )

    def may(
        self, verb: str, resource: str, namespace: str = "", *, name: str = "", subresource: str = ""
    ) -> bool:
        """The API server's answer to a SelfSubjectAccessReview (``resource`` as plural.group).

        Asked directly rather than through ``kubectl auth can-i``, which needs the resource to be
        served (this server has no RayJob or InferenceService CRDs) to resolve its group.
        """
        plural, _, group = resource.partition(".")
        attributes = {
            "verb": verb,
            "group": group,
            "resource": plural,
            "namespace": namespace,
            "name": name,
            "subresource": subresource,
        }
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        result = self.run("create", "-f", "-", "-o", "json", stdin=json.dumps(review))
        assert result.returncode == 0, result.stderr
        return bool(json.loads(result.stdout)["status"].get("allowed"))

    def allowed(self, *args: str) -> bool:
        """Whether a real request succeeds (False only on Forbidden; any other failure fails the test)."""
        result = self.run(*args)
        if result.returncode == 0:
            return True
        assert "Forbidden" in result.stderr or "forbidden" in result.stderr, result.stderr
        return False


def can_i_list(operator: AsOperator, namespace: str) -> list[str]:
    """``kubectl auth can-i --list`` as normalised rows: resources | non-resource URLs | names | verbs."""
    result = operator.run("auth", "can-i", "--list", "-n", namespace)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    starts = [header.index(title) for title in ("Resources", "Non-Resource URLs", "Resource Names", "Verbs")]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    # Sorted, because kubectl lists rules in the order the authorizer found them, not a stable one.
    return sorted(" | ".join(" ".join(row[a:b].split()) for a, b in bounds) for row in rows if row.strip())


def render_golden(plane: ControlPlane) -> str:
    sections = []
    for mode, service_account, namespace in VIEWS:
        rows = can_i_list(AsOperator(plane, service_account), namespace)
        title = f"## {mode}: system:serviceaccount:{service_account[0]}:{service_account[1]} in namespace {namespace}"
        sections.append("\n".join([title, *rows]))
    header = (
        "# kubectl auth can-i --list for the operator's ServiceAccount, per mode and namespace (tests/chart/test_rbac.py).\n"
        "# Regenerate after an intended RBAC change: KAIZEN_UPDATE_GOLDEN=1 .venv/bin/pytest tests/chart/test_rbac.py\n"
        "# Columns: resources | non-resource URLs | resource names | verbs\n"
    )
    return header + "\n\n".join(sections) + "\n"


def test_operator_permissions_match_the_golden_list(
    chart_plane: ControlPlane, cluster_release: dict[str, Any], namespaced_release: dict[str, Any]
) -> None:
    current = render_golden(chart_plane)
    if os.environ.get("KAIZEN_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(current)
    assert current == GOLDEN.read_text(), (
        f"RBAC changed; review the diff and regenerate {GOLDEN.relative_to(ROOT)}"
    )


def test_cluster_wide_operator_does_its_job_and_nothing_more(
    chart_plane: ControlPlane, cluster_release: dict[str, Any]
) -> None:
    team = WATCHED[1]
    chart_plane.kubectl(
        "create", "secret", "generic", "kaizen-db", "-n", team, "--from-literal=url=sqlite://"
    )
    operator = AsOperator(chart_plane, CLUSTER_SA)
    # Its job, in any namespace: its kinds and their status, Events, the Secrets policies name, CRDs.
    assert operator.may("create", "trainingruns.kaizen.dev", team)
    assert operator.may("patch", "experiments.kaizen.dev", team, subresource="status")
    assert operator.may("create", "rayjobs.ray.io", team)
    assert operator.may("delete", "inferenceservices.serving.kserve.io", team)
    assert operator.may("create", "events", team)
    assert operator.may("create", "events.events.k8s.io", team)
    assert operator.allowed("get", "secret", "kaizen-db", "-n", team)
    assert operator.allowed("get", "crd", "learningpolicies.kaizen.dev")
    assert operator.allowed("get", "namespaces")
    # Leader election only in its own namespace, only on its own Lease.
    lease = LEASE.replace("NAMESPACE", NAMESPACE)
    assert operator.run("create", "-f", "-", stdin=lease).returncode == 0
    assert operator.allowed("get", "lease", "kaizen-operator", "-n", NAMESPACE)
    assert not operator.may("update", "leases.coordination.k8s.io", NAMESPACE, name="someone-else")
    assert not operator.may("create", "leases.coordination.k8s.io", team)
    # Never: pods, listing Secrets, writing Secrets, changing RBAC or CRDs, deleting namespaces.
    assert not operator.allowed("run", "x", "--image=busybox", "-n", team)
    assert not operator.allowed("get", "secrets", "-n", team)  # get by name only, never list
    assert not operator.may("update", "secrets", team, name="kaizen-db")
    assert not operator.may("create", "rolebindings.rbac.authorization.k8s.io", team)
    assert not operator.may(
        "delete", "customresourcedefinitions.apiextensions.k8s.io", name="learningpolicies.kaizen.dev"
    )
    assert not operator.may("delete", "namespaces", name=team)
    assert not operator.may("update", "rayjobs.ray.io", team)


def test_namespaced_operator_stays_in_its_namespaces_and_named_secrets(
    chart_plane: ControlPlane, namespaced_release: dict[str, Any]
) -> None:
    watched = WATCHED[0]
    for namespace in (watched, OTHER, NAMESPACED_NAMESPACE):
        for name in (*SECRET_NAMES, "someone-elses"):
            chart_plane.kubectl("create", "secret", "generic", name, "-n", namespace, "--from-literal=k=v")
    operator = AsOperator(chart_plane, NAMESPACED_SA)
    assert operator.allowed("get", "secret", SECRET_NAMES[0], "-n", watched)
    assert operator.allowed("get", "secret", SECRET_NAMES[1], "-n", watched)
    assert not operator.allowed("get", "secret", "someone-elses", "-n", watched)
    assert not operator.allowed("get", "secret", SECRET_NAMES[0], "-n", OTHER)
    assert not operator.allowed("get", "secret", SECRET_NAMES[0], "-n", NAMESPACED_NAMESPACE)
    # Its kinds in watched namespaces only; nothing cluster-wide but reading CRDs.
    assert operator.allowed("get", "learningpolicies", "-n", watched)
    assert not operator.allowed("get", "learningpolicies", "-n", OTHER)
    assert not operator.allowed("get", "learningpolicies", "--all-namespaces")
    assert not operator.may("create", "trainingruns.kaizen.dev", OTHER)
    assert operator.allowed("get", "crd", "experiments.kaizen.dev")
    assert not operator.allowed("get", "namespaces")
    assert not operator.allowed("run", "x", "--image=busybox", "-n", watched)


def test_rendered_rbac_has_no_wildcards() -> None:
    for value_set in ("default", "namespaced", "embedded"):
        objects = render(ci_values(value_set))
        for role in [*find(objects, "ClusterRole"), *find(objects, "Role")]:
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in rule.get(field, []), (value_set, role["metadata"]["name"], rule)


LEASE = """
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: kaizen-operator
  namespace: NAMESPACE
spec:
  holderIdentity: test
  leaseDurationSeconds: 15
"""
