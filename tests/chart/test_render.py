"""The chart renders, lints and fails the way a platform team expects, through the real Helm library."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest

from tests.chart.chart import (
    CHART_DIR,
    CI_VALUES_DIR,
    NAMESPACE,
    RELEASE,
    ci_values,
    container,
    env,
    find,
    merged,
    notes,
    one,
    render,
)

DB = {"database": {"existingSecret": "kaizen-db"}}
OPERATOR = f"{RELEASE}-operator"
GATEWAY = f"{RELEASE}-gateway"
WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


@pytest.mark.parametrize(
    "value_set", sorted(p.name.split("-values")[0] for p in CI_VALUES_DIR.glob("*.yaml"))
)
@pytest.mark.parametrize("kube_version", ["v1.20.2", "v1.31.0"])
def test_every_ci_value_set_lints_without_warnings(value_set: str, kube_version: str) -> None:
    report = helm.lint(CHART_DIR, ci_values(value_set), strict=True, kube_version=kube_version)
    problems = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert not problems, report
    assert not report["errors"], report


def test_default_values_render_the_operator_gateway_and_hook() -> None:
    objects = render(ci_values("default"))
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {
        ("Deployment", OPERATOR),
        ("Deployment", GATEWAY),
        ("Service", GATEWAY),
        ("Service", f"{OPERATOR}-metrics"),
        ("ServiceAccount", OPERATOR),
        ("ServiceAccount", GATEWAY),
        ("ClusterRole", OPERATOR),
        ("ClusterRoleBinding", OPERATOR),
        ("Role", f"{OPERATOR}-leader-election"),
        ("Job", f"{RELEASE}-migrate"),
        ("Secret", f"{RELEASE}-token"),
    } <= kinds
    assert len(find(objects, "CustomResourceDefinition")) == 4
    # Ingress NetworkPolicies are on by default; optional parts stay off; one operator replica needs no PDB.
    assert {n["metadata"]["name"] for n in find(objects, "NetworkPolicy")} == {OPERATOR, GATEWAY}
    for kind in ("ServiceMonitor", "PersistentVolumeClaim"):
        assert not find(objects, kind), kind
    assert [c["metadata"]["name"] for c in find(objects, "ConfigMap")] == [f"{RELEASE}-revoked-tokens"]
    assert [p["metadata"]["name"] for p in find(objects, "PodDisruptionBudget")] == [GATEWAY]


def test_operator_runs_the_contracted_command_with_its_environment() -> None:
    deployment = one(render(ci_values("default")), "Deployment", OPERATOR)
    operator = container(deployment["spec"]["template"]["spec"], "operator")
    assert operator["command"] == ["python", "/app/operator/main.py"]
    assert operator["args"] == ["--metrics-port=8080", "--health-port=8081"]  # no --namespace: all of them
    variables = env(operator)
    assert variables["KAIZEN_DATABASE_URL"] == {"secretKeyRef": {"name": "kaizen-db", "key": "url"}}
    assert "KAIZEN_TOKEN_SECRET" not in variables  # the operator holds no token key
    assert variables["KAIZEN_GATEWAY_TOKEN_FILE"] == "/var/run/secrets/kaizen/gateway/token"
    assert variables["KAIZEN_GATEWAY_URL"] == f"http://{GATEWAY}.{NAMESPACE}.svc:8000"
    assert variables["KAIZEN_OPERATOR_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in operator["ports"]} == {"metrics": 8080, "health": 8081}


def test_gateway_mounts_a_token_only_for_kubernetes_auth_and_probes_its_own_endpoints() -> None:
    objects = render(ci_values("default"))
    pod = one(objects, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True  # gateway.kubernetesAuth.enabled by default
    assert one(objects, "ServiceAccount", GATEWAY)["automountServiceAccountToken"] is False
    without = render(merged(ci_values("default"), {"gateway": {"kubernetesAuth": {"enabled": False}}}))
    assert (
        one(without, "Deployment", GATEWAY)["spec"]["template"]["spec"]["automountServiceAccountToken"]
        is False
    )
    gateway = container(pod, "gateway")
    assert gateway["command"] == ["kaizen", "gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_migration_is_a_pre_install_and_pre_upgrade_hook_replaced_each_time() -> None:
    job = one(render(ci_values("default")), "Job", f"{RELEASE}-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    migrate = container(job["spec"]["template"]["spec"], "migrate")
    assert migrate["command"] == ["kaizen", "db", "upgrade"]
    assert env(migrate)["KAIZEN_DATABASE_URL"] == {"secretKeyRef": {"name": "kaizen-db", "key": "url"}}


def test_image_tag_defaults_to_app_version_and_a_digest_pins_it() -> None:
    app_version = helm.Chart.load(CHART_DIR).metadata["appVersion"]
    images = {c["image"] for _, pod in _pods(render(ci_values("default"))) for c in pod["containers"]}
    assert images == {f"ghcr.io/kaizen-dev/kaizen:{app_version}"}
    digest = "sha256:" + "a" * 64
    pinned = render(merged(ci_values("default"), {"image": {"digest": digest}}))
    assert {c["image"] for _, pod in _pods(pinned) for c in pod["containers"]} == {
        f"ghcr.io/kaizen-dev/kaizen@{digest}"
    }


def test_representative_values_render_namespaced_mode_with_every_toggle_on() -> None:
    values = ci_values("namespaced")
    objects = render(values)
    watched = values["operator"]["watchNamespaces"]
    operator = container(one(objects, "Deployment", OPERATOR)["spec"]["template"]["spec"], "operator")
    assert operator["args"][: len(watched)] == [f"--namespace={ns}" for ns in watched]
    assert one(objects, "Deployment", OPERATOR)["spec"]["replicas"] == 2
    # Roles in exactly the watched namespaces; the only ClusterRole reads CRDs.
    assert sorted(r["metadata"]["namespace"] for r in find(objects, "Role", OPERATOR)) == sorted(watched)
    assert sorted(b["metadata"]["namespace"] for b in find(objects, "RoleBinding", OPERATOR)) == sorted(
        watched
    )
    # The only ClusterRole of the operator reads CRDs (the others are the gateway roles it and others are
    # bound to per namespace).
    [cluster_role] = [r for r in find(objects, "ClusterRole") if r["metadata"]["name"].startswith(OPERATOR)]
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    secret_rule = next(
        r for r in find(objects, "Role", OPERATOR)[0]["rules"] if r["resources"] == ["secrets"]
    )
    assert secret_rule == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["kaizen-db", "judge-api-key", "kaizen-storage"],
        "verbs": ["get"],
    }
    pdbs = {p["metadata"]["name"]: p for p in find(objects, "PodDisruptionBudget")}
    assert set(pdbs) == {OPERATOR, GATEWAY}
    assert all(p["spec"]["minAvailable"] == 1 for p in pdbs.values())
    assert {n["metadata"]["name"] for n in find(objects, "NetworkPolicy")} == {OPERATOR, GATEWAY}
    assert {s["metadata"]["name"] for s in find(objects, "ServiceMonitor")} == {OPERATOR, GATEWAY}
    assert all(s["metadata"]["labels"]["release"] == "prometheus" for s in find(objects, "ServiceMonitor"))
    dashboard = one(objects, "ConfigMap", f"{RELEASE}-dashboard")
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["kaizen.json"])["uid"] == "kaizen-loop"
    # An existing token Secret replaces the generated one; only the gateway mounts it.
    assert not find(objects, "Secret")
    gateway_pod = one(objects, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    assert {
        "name": "token-keys",
        "secret": {"secretName": "kaizen-token", "defaultMode": 0o440},
    } in gateway_pod["volumes"]


def test_namespaced_flag_alone_watches_the_release_namespace() -> None:
    objects = render(merged(ci_values("default"), {"rbac": {"namespaced": True}}))
    operator = container(one(objects, "Deployment", OPERATOR)["spec"]["template"]["spec"], "operator")
    assert operator["args"][0] == f"--namespace={NAMESPACE}"
    assert [r["metadata"]["namespace"] for r in find(objects, "Role", OPERATOR)] == [NAMESPACE]


def test_pdb_uses_policy_v1_where_served() -> None:
    objects = render(ci_values("namespaced"))
    assert {p["apiVersion"] for p in find(objects, "PodDisruptionBudget")} == {"policy/v1"}


def test_embedded_mode_runs_gateway_beside_the_operator_on_sqlite() -> None:
    objects = render(ci_values("embedded"))
    assert not find(objects, "Deployment", GATEWAY)
    assert not find(objects, "Job")
    pod = one(objects, "Deployment", OPERATOR)["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["operator", "gateway"]
    assert container(pod, "migrate")["command"] == ["kaizen", "db", "upgrade"]
    for name in ("operator", "gateway", "migrate"):
        assert env(container(pod, name))["KAIZEN_DATABASE_URL"] == "sqlite:////var/lib/kaizen/kaizen.db"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": f"{RELEASE}-data"}} in pod["volumes"]
    assert (
        one(objects, "PersistentVolumeClaim", f"{RELEASE}-data")["spec"]["resources"]["requests"]["storage"]
        == "2Gi"
    )
    # The gateway Service finds the operator pod, which serves the gateway in this mode.
    selector = one(objects, "Service", GATEWAY)["spec"]["selector"]
    labels = one(objects, "Deployment", OPERATOR)["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_operator_writes_snapshots_to_a_volume_that_can_be_a_shared_claim() -> None:
    def data_volume(values: dict[str, Any]) -> dict[str, Any]:
        pod = one(render(values), "Deployment", OPERATOR)["spec"]["template"]["spec"]
        assert {"name": "data", "mountPath": "/var/lib/kaizen"} in container(pod, "operator")["volumeMounts"]
        assert env(container(pod, "operator"))["KAIZEN_DATA_ROOT"] == "/var/lib/kaizen"
        [volume] = [v for v in pod["volumes"] if v["name"] == "data"]
        return dict(volume)

    assert data_volume(ci_values("default")) == {"name": "data", "emptyDir": {}}
    claim = {"persistentVolumeClaim": {"claimName": "kaizen-snapshots"}}
    shared = merged(ci_values("default"), {"operator": {"dataVolume": claim}})
    assert data_volume(shared) == {"name": "data", **claim}


def test_notes_say_what_to_do_next() -> None:
    text = notes(ci_values("namespaced"))
    assert "kaizen token create --subject agent-coder --role agent --namespace team-a" in text
    assert "--clusterrole=kaizen-gateway-agent --serviceaccount=team-a:agent-coder" in text
    assert "kubectl apply -n team-a -f examples/learningpolicy-coder-dpo.yaml" in text
    assert "kubectl get kaizen" in text
    assert "kaizen experiment report <experiment> -n team-a --gateway http://127.0.0.1:8000" in text
    assert "team-a, team-b (namespaced mode)" in text


def test_dashboard_queries_only_metrics_the_code_exports() -> None:
    dashboard = json.loads((CHART_DIR / "dashboards" / "kaizen.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for expr in expressions for m in re.findall(r"\bkaizen_[a-z_]+", expr)}
    assert used <= KNOWN_METRICS, used - KNOWN_METRICS
    titles = " ".join(p["title"] for p in dashboard["panels"] if p["type"] == "row")
    for section in ("Loop health", "Data inflow", "Training runs", "Experiments", "Time to rollback"):
        assert section in titles


# The operator's metric names are the contract of issue 6; the gateway's come from its Metrics class
# (prometheus_client appends _total to counters and _bucket/_sum/_count to histograms).
KNOWN_METRICS = {
    "kaizen_operator_reconciles_total",
    "kaizen_operator_errors_total",
    "kaizen_operator_decisions_total",
    "kaizen_operator_rollback_seconds_bucket",
    "kaizen_operator_rollback_seconds_count",
    "kaizen_operator_training_runs_total",
    "kaizen_gateway_records_ingested_total",
    "kaizen_gateway_requests_total",
    "kaizen_gateway_store_unavailable_total",
    "kaizen_router_requests_total",
    "kaizen_router_fallbacks_total",
}


def test_gateway_metric_names_match_the_gateway_code() -> None:
    from prometheus_client import generate_latest

    from controllers.gateway.app import Metrics

    metrics = Metrics()
    metrics.records.labels(kind="runs").inc()
    metrics.requests.labels(route="/v1/runs/batch", status="200").inc()
    metrics.unavailable.inc()
    exposed = generate_latest(metrics.registry).decode()
    for name in (
        "kaizen_gateway_records_ingested_total",
        "kaizen_gateway_requests_total",
        "kaizen_gateway_store_unavailable_total",
    ):
        assert f"\n{name}" in exposed, name


def _pods(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    from tests.chart.chart import pod_specs

    return list(pod_specs(objects))
