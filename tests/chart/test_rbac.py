"""What the operator's ServiceAccount may do, checked with its own token against the API server; and
what the gateway roles allow, asked the way the gateway asks (TokenReview, then SubjectAccessReview).

The golden file holds ``kubectl auth can-i --list`` for the operator in each mode and namespace; a
change to the chart's RBAC shows up as a diff in review. Regenerate it after an intended change with
``KAIZEN_UPDATE_GOLDEN=1 .venv/bin/pytest tests/chart/test_rbac.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from controllers.decisions.access import Action, rbac_attributes
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
    # A policy's storage Secret (training.storage.secretRef), read to write its run's dataset snapshot.
    assert operator.allowed("get", "secret", "kaizen-storage", "-n", watched)
    assert not operator.allowed("get", "secrets", "-n", watched)  # by name only, never list
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


def test_the_default_install_is_cluster_wide_with_every_rule_a_namespaced_role_has() -> None:
    """Watching every namespace is the default; its ClusterRole grants what a watched namespace's Role
    grants (the four kinds, RayJobs, InferenceServices, Events, Secrets) and no more than CRDs and
    namespaces besides; the Lease stays in the release namespace in both modes."""
    cluster_wide = render(ci_values("default"))
    operator = f"{RELEASE}-operator"
    [cluster_role] = [r for r in find(cluster_wide, "ClusterRole") if r["metadata"]["name"] == operator]
    assert not [r for r in find(cluster_wide, "Role") if r["metadata"]["name"] == operator]
    namespaced = render(ci_values("namespaced"))
    roles = [r for r in find(namespaced, "Role") if r["metadata"]["name"] == operator]
    assert roles
    extra = {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}

    def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {
            (group, resource, verb)
            for rule in rules
            if "resourceNames" not in rule  # the namespaced CI values name Secrets; cluster-wide does not
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }

    for role in roles:
        assert grants(role["rules"]) <= grants(cluster_role["rules"])
    assert {(g, r) for g, r, _ in grants(cluster_role["rules"]) - grants(roles[0]["rules"])} <= extra | {
        ("", "secrets")
    }
    for objects in (cluster_wide, namespaced):
        [lease_role] = [
            r for r in find(objects, "Role") if r["metadata"]["name"].endswith("-leader-election")
        ]
        assert {res for rule in lease_role["rules"] for res in rule["resources"]} == {"leases"}


def test_rendered_rbac_has_no_wildcards() -> None:
    for value_set in ("default", "namespaced", "embedded"):
        objects = render(ci_values(value_set))
        for role in [*find(objects, "ClusterRole"), *find(objects, "Role")]:
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in rule.get(field, []), (value_set, role["metadata"]["name"], rule)


GATEWAY_SA = (NAMESPACE, f"{RELEASE}-gateway")
AUDIENCE = "kaizen-gateway"


def access_review(plane: ControlPlane, user: str, action: Action, namespace: str, name: str = "") -> bool:
    """A SubjectAccessReview (as the cluster admin) on one of Kaizen's gateway verbs."""
    namespace_of = user.split(":")[2] if user.startswith("system:serviceaccount:") else ""
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace_of}", "system:authenticated"]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": groups,
            "resourceAttributes": rbac_attributes(action, namespace, name),
        },
    }
    result = plane.kubectl("create", "-f", "-", "-o", "json", stdin=json.dumps(review))
    return bool(json.loads(result.stdout)["status"].get("allowed"))


def service_account(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def test_operator_may_write_routes_and_policies_through_the_gateway_and_nothing_of_an_agent(
    chart_plane: ControlPlane, cluster_release: dict[str, Any], namespaced_release: dict[str, Any]
) -> None:
    operator = service_account(*CLUSTER_SA)
    for namespace in WATCHED:
        assert access_review(chart_plane, operator, Action.WRITE_ROUTES, namespace, "coder")
        assert access_review(chart_plane, operator, Action.READ_ROUTES, namespace, "coder")
        assert access_review(chart_plane, operator, Action.WRITE_POLICIES, namespace, "coder-dpo")
        for action in (
            Action.WRITE_EXPERIENCE,
            Action.WRITE_FEEDBACK,
            Action.CALL_ROUTES,
            Action.WRITE_REVIEWS,
        ):
            assert not access_review(chart_plane, operator, action, namespace), action
    # Namespaced mode: only in the watched namespaces.
    scoped = service_account(*NAMESPACED_SA)
    assert access_review(chart_plane, scoped, Action.WRITE_ROUTES, WATCHED[0], "coder")
    assert not access_review(chart_plane, scoped, Action.WRITE_ROUTES, OTHER, "coder")
    assert not access_review(chart_plane, scoped, Action.WRITE_EXPERIENCE, WATCHED[0])


def test_a_service_account_bound_to_the_agent_role_writes_experience_and_cannot_touch_routes(
    chart_plane: ControlPlane, cluster_release: dict[str, Any]
) -> None:
    team, other = WATCHED
    chart_plane.kubectl("create", "serviceaccount", "agent-coder", "-n", team)
    chart_plane.kubectl(
        "create", "rolebinding", "agent-coder-kaizen", "-n", team,
        f"--clusterrole={RELEASE}-gateway-agent", f"--serviceaccount={team}:agent-coder",
    )  # fmt: skip
    agent = service_account(team, "agent-coder")
    assert access_review(chart_plane, agent, Action.WRITE_EXPERIENCE, team, "agent-coder")
    assert access_review(chart_plane, agent, Action.WRITE_FEEDBACK, team)
    assert access_review(chart_plane, agent, Action.CALL_ROUTES, team, "coder")
    assert not access_review(chart_plane, agent, Action.WRITE_ROUTES, team, "coder")
    assert not access_review(chart_plane, agent, Action.READ_REVIEWS, team)
    assert not access_review(chart_plane, agent, Action.WRITE_EXPERIENCE, other, "agent-coder")


def test_gateway_reviews_the_operators_token_and_access_with_its_own_service_account(
    chart_plane: ControlPlane, cluster_release: dict[str, Any]
) -> None:
    """The gateway's code path, against the installed chart: its ServiceAccount (system:auth-delegator)
    checks the operator's token for the gateway's audience, then asks RBAC about Kaizen's verbs."""
    import asyncio

    from controllers.gateway.auth import Keyring
    from controllers.gateway.identity import Authenticator, Forbidden, Unauthenticated
    from controllers.runtime.kube import Kube, load_configuration

    gateway_token = cluster.service_account_token(chart_plane, *GATEWAY_SA)
    kubeconfig = chart_plane.workdir / "gateway-kubeconfig"
    kubeconfig.write_text(json.dumps(kubeconfig_for(chart_plane.server, gateway_token)))
    operator_token = cluster.service_account_token(chart_plane, *CLUSTER_SA, audience=AUDIENCE)
    api_token = cluster.service_account_token(chart_plane, *CLUSTER_SA)  # for the API server, not the gateway

    async def check() -> None:
        kube = Kube(load_configuration(str(kubeconfig)), timeout=10.0)
        authenticator = Authenticator(Keyring.single("unused"), kube=kube, audiences=(AUDIENCE,))
        try:
            principal = await authenticator.authenticate(f"Bearer {operator_token}")
            assert principal.subject == service_account(*CLUSTER_SA)
            await authenticator.authorize(principal, Action.WRITE_ROUTES, WATCHED[0], "coder")
            with pytest.raises(Forbidden, match=r"gateway\.kaizen\.dev"):
                await authenticator.authorize(principal, Action.WRITE_EXPERIENCE, WATCHED[0], "agent-coder")
            # A token minted for the API server's audience is not one for the gateway.
            with pytest.raises(Unauthenticated):
                await authenticator.authenticate(f"Bearer {api_token}")
        finally:
            await authenticator.close()

    asyncio.run(check())
    # Reviews are all its account may do with the API.
    gateway = AsOperator(chart_plane, GATEWAY_SA)
    assert gateway.may("create", "tokenreviews.authentication.k8s.io")
    assert gateway.may("create", "subjectaccessreviews.authorization.k8s.io")
    assert not gateway.allowed("get", "secrets", "-n", NAMESPACE)
    assert not gateway.allowed("get", "pods", "-n", NAMESPACE)


def kubeconfig_for(server: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }


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
