"""``helm install`` and ``helm upgrade`` into a real kube-apiserver (v1.20): every object lands, the
CRDs are exactly the generated ones, the hook Job runs on each, the generated token key survives.

No pods run (the control plane has no nodes); the migration hook is completed by ``JobCompleter``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.controlplane import ControlPlane, strip_key
from tests.chart import cluster
from tests.chart.chart import NAMESPACE, RELEASE, merged
from tests.chart.conftest import CLUSTER_VALUES, NAMESPACED_NAMESPACE, NAMESPACED_RELEASE, WATCHED
from tests.schemas import CRD_DIR, EXAMPLES_DIR


def manifest_objects(release: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(release["manifest"]) if doc]


def test_install_creates_every_object_of_the_release(
    chart_plane: ControlPlane, cluster_release: dict[str, Any]
) -> None:
    assert cluster_release["status"] == "deployed"
    objects = manifest_objects(cluster_release)
    assert {o["kind"] for o in objects} >= {
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ClusterRole",
    }
    for obj in objects:
        namespace = ["-n", obj["metadata"]["namespace"]] if "namespace" in obj["metadata"] else []
        found = cluster.get_json(chart_plane, obj["kind"].lower(), obj["metadata"]["name"], *namespace)
        assert found["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kaizen"


@pytest.mark.parametrize("path", sorted(CRD_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_installed_crds_are_the_generated_ones(
    chart_plane: ControlPlane, cluster_release: dict[str, Any], path: Path
) -> None:
    generated = yaml.safe_load(path.read_text())
    installed = cluster.get_json(chart_plane, "crd", generated["metadata"]["name"])
    # This server is older than 1.25, so the chart left out the CEL rules (see controllers/crdgen.py);
    # the server adds only its conversion default.
    expected = strip_key(generated["spec"], "x-kubernetes-validations")
    installed_spec = {k: v for k, v in installed["spec"].items() if k != "conversion"}
    assert installed_spec == expected
    assert installed["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    established = {c["type"]: c["status"] for c in installed["status"]["conditions"]}
    assert established["Established"] == "True"


def test_installed_crds_accept_the_examples(
    chart_plane: ControlPlane, cluster_release: dict[str, Any]
) -> None:
    chart_plane.kubectl(
        "wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=kaizen"
    )
    chart_plane.wait_openapi_published([p.name.removesuffix(".yaml") for p in CRD_DIR.glob("*.yaml")])
    chart_plane.kubectl("apply", "-n", WATCHED[0], "-f", str(EXAMPLES_DIR))
    listed = chart_plane.kubectl("get", "kaizen", "-n", WATCHED[0], "-o", "name").stdout.split()
    assert len(listed) == len(list(EXAMPLES_DIR.glob("*.yaml")))


def test_namespaced_release_puts_roles_only_in_the_watched_namespaces(
    chart_plane: ControlPlane, namespaced_release: dict[str, Any]
) -> None:
    assert namespaced_release["status"] == "deployed"
    name = f"{NAMESPACED_RELEASE}-operator"
    for namespace in WATCHED:
        role = cluster.get_json(chart_plane, "role", name, "-n", namespace)
        assert {"learningpolicies", "trainingruns"} <= set(role["rules"][0]["resources"])
    listing = chart_plane.kubectl(
        "get",
        "roles",
        "--all-namespaces",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}",
    )
    operator_roles = sorted(r for r in listing.stdout.split() if r.endswith(f"/{name}"))
    assert operator_roles == sorted(f"{ns}/{name}" for ns in WATCHED)
    cluster_roles = chart_plane.kubectl(
        "get", "clusterroles", "-l", f"app.kubernetes.io/instance={NAMESPACED_RELEASE}", "-o", "name"
    )
    gateway = f"{NAMESPACED_RELEASE}-gateway"
    assert sorted(cluster_roles.stdout.split()) == sorted(
        f"clusterrole.rbac.authorization.k8s.io/{role}"
        for role in (
            f"{name}-crd-reader",
            f"{gateway}-agent",
            f"{gateway}-reviewer",
            f"{gateway}-operator",
            f"{gateway}-feedback",
        )
    )
    # The operator's only cluster-wide binding reads CRDs; the gateway's may review tokens and access.
    bindings = chart_plane.kubectl(
        "get", "clusterrolebindings", "-l", f"app.kubernetes.io/instance={NAMESPACED_RELEASE}", "-o", "name"
    )
    assert sorted(bindings.stdout.split()) == sorted(
        f"clusterrolebinding.rbac.authorization.k8s.io/{binding}"
        for binding in (f"{name}-crd-reader", f"{gateway}-auth-delegator")
    )
    assert cluster.get_json(chart_plane, "configmap", f"{NAMESPACED_RELEASE}-dashboard", "-n", "monitoring")


def test_upgrade_applies_new_values_reruns_the_hook_and_keeps_the_token_keys(
    chart_plane: ControlPlane, cluster_release: dict[str, Any]
) -> None:
    job_name = f"{RELEASE}-migrate"
    token_name = f"{RELEASE}-token"
    hook_before = cluster.get_json(chart_plane, "job", job_name, "-n", NAMESPACE)["metadata"]["uid"]
    key_before = cluster.get_json(chart_plane, "secret", token_name, "-n", NAMESPACE)["data"]["default"]
    assert len(base64.b64decode(key_before)) == 64
    # A rotation under way: an admin added the next key id to the generated Secret.
    next_key = base64.b64encode(b"the-next-key").decode()
    patch = json.dumps({"data": {"2025-06": next_key}})
    chart_plane.kubectl("patch", "secret", token_name, "-n", NAMESPACE, "--type=merge", "-p", patch)

    upgraded = cluster.upgrade(
        chart_plane, RELEASE, NAMESPACE, merged(CLUSTER_VALUES, {"gateway": {"replicas": 3}})
    )

    assert upgraded["status"] == "deployed"
    assert upgraded["revision"] == cluster_release["revision"] + 1
    gateway = cluster.get_json(chart_plane, "deployment", f"{RELEASE}-gateway", "-n", NAMESPACE)
    assert gateway["spec"]["replicas"] == 3
    hook_after = cluster.get_json(chart_plane, "job", job_name, "-n", NAMESPACE)
    assert hook_after["metadata"]["uid"] != hook_before  # before-hook-creation: a fresh Job each time
    assert hook_after["status"]["succeeded"] == 1
    keys_after = cluster.get_json(chart_plane, "secret", token_name, "-n", NAMESPACE)["data"]
    assert keys_after == {"default": key_before, "2025-06": next_key}  # tokens already issued stay valid


def test_install_refuses_missing_database_secret_before_touching_the_cluster(
    chart_plane: ControlPlane,
) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError, match=r"database\.existingSecret is required"):
        cluster.install(chart_plane, "kaizen-broken", NAMESPACED_NAMESPACE, {"crds": {"install": False}})
    releases = chart_plane.kubectl(
        "get", "secrets", "-n", NAMESPACED_NAMESPACE, "-l", "name=kaizen-broken", "-o", "name"
    )
    assert releases.stdout.strip() == ""


def test_a_token_secret_from_before_key_ids_keeps_its_key_as_the_default_id(
    chart_plane: ControlPlane,
) -> None:
    """The chart used to generate one key under ``token-secret``; an upgrade serves it as key id ``default``."""
    release, namespace = "kaizen-legacy", "legacy"
    chart_plane.kubectl("create", "namespace", namespace)
    old_key = base64.b64encode(b"x" * 64).decode()
    chart_plane.kubectl(
        "create", "-f", "-", stdin=json.dumps(_helm_owned_secret(release, namespace, old_key))
    )
    values = merged(
        CLUSTER_VALUES,
        {"crds": {"install": False}, "migration": {"enabled": False}, "rbac": {"create": False}},
    )
    cluster.install(chart_plane, release, namespace, values)
    data = cluster.get_json(chart_plane, "secret", f"{release}-token", "-n", namespace)["data"]
    # Adopting an object, Helm merges into it and leaves the old key in place (an upgrade from the old
    # release's manifest removes it): the same secret under a second id, harmless.
    assert data["default"] == old_key
    assert set(data) <= {"default", "token-secret"}
    with cluster.helm_config(chart_plane, namespace) as config:
        config.uninstall(release)


def _helm_owned_secret(release: str, namespace: str, key: str) -> dict[str, Any]:
    """The token Secret as the previous chart left it (Helm adopts it through these annotations)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"{release}-token",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {
                "meta.helm.sh/release-name": release,
                "meta.helm.sh/release-namespace": namespace,
            },
        },
        "data": {"token-secret": key},
    }
