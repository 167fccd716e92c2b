"""Who holds which credential, as rendered: the operator a projected ServiceAccount token for the gateway
and no token key; the gateway the key directory, the revocation list and (when enabled) the
auth-delegator binding; the three gateway roles with exactly Kaizen's verbs; NetworkPolicies by default."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api.identity import Role
from controllers.decisions.access import API_GROUP, GRANTS
from tests.chart.chart import NAMESPACE, RELEASE, ci_values, container, env, find, merged, one, render

OPERATOR = f"{RELEASE}-operator"
GATEWAY = f"{RELEASE}-gateway"
TOKEN_DIR = "/var/run/secrets/kaizen/gateway"
KEYS_DIR = "/var/run/secrets/kaizen/token-keys"
REVOKED_DIR = "/etc/kaizen/revocations"
NO_K8S_AUTH = {"gateway": {"kubernetesAuth": {"enabled": False}}}


def pod(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = one(objects, "Deployment", name)["spec"]["template"]["spec"]
    return spec


def volume(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [v for v in pod_spec["volumes"] if v["name"] == name]
    return dict(found)


def mounts(container_spec: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container_spec["volumeMounts"]}


@pytest.mark.parametrize("value_set", ["default", "namespaced", "embedded"])
def test_operator_has_no_token_key_and_a_projected_token_for_the_gateway(value_set: str) -> None:
    operator_pod = pod(render(ci_values(value_set)), OPERATOR)
    operator = container(operator_pod, "operator")
    variables = env(operator)
    assert not {"KAIZEN_TOKEN_SECRET", "KAIZEN_TOKEN_KEYS_DIR", "KAIZEN_GATEWAY_TOKEN"} & set(variables)
    assert variables["KAIZEN_GATEWAY_TOKEN_FILE"] == f"{TOKEN_DIR}/token"
    assert mounts(operator)["gateway-token"] == TOKEN_DIR
    assert "token-keys" not in mounts(operator)
    projected = volume(operator_pod, "gateway-token")["projected"]
    assert projected["sources"] == [
        {"serviceAccountToken": {"audience": "kaizen-gateway", "expirationSeconds": 3600, "path": "token"}}
    ]
    # Nothing in the operator's environment comes from the token Secret.
    for value in variables.values():
        assert not (
            isinstance(value, dict) and value.get("secretKeyRef", {}).get("name") == f"{RELEASE}-token"
        )


def test_the_audience_value_binds_both_ends() -> None:
    objects = render(
        merged(ci_values("default"), {"gateway": {"kubernetesAuth": {"audience": "kaizen.example"}}})
    )
    source = volume(pod(objects, OPERATOR), "gateway-token")["projected"]["sources"][0]
    assert source["serviceAccountToken"]["audience"] == "kaizen.example"
    assert env(container(pod(objects, GATEWAY), "gateway"))["KAIZEN_TOKEN_AUDIENCE"] == "kaizen.example"


@pytest.mark.parametrize(("value_set", "workload"), [("default", GATEWAY), ("embedded", OPERATOR)])
def test_gateway_reads_keys_from_a_directory_and_revocations_from_a_configmap(
    value_set: str, workload: str
) -> None:
    objects = render(ci_values(value_set))
    gateway_pod = pod(objects, workload)
    gateway = container(gateway_pod, "gateway")
    variables = env(gateway)
    assert "KAIZEN_TOKEN_SECRET" not in variables
    assert variables["KAIZEN_TOKEN_KEYS_DIR"] == KEYS_DIR
    assert "KAIZEN_TOKEN_SIGNING_KEY" not in variables  # the keyring's own rule: "default"
    assert variables["KAIZEN_TOKEN_REVOKED_FILE"] == f"{REVOKED_DIR}/revoked"
    assert variables["KAIZEN_KUBERNETES_AUTH"] == "true"
    assert variables["KAIZEN_TOKEN_AUDIENCE"] == "kaizen-gateway"
    assert mounts(gateway)["token-keys"] == KEYS_DIR
    assert mounts(gateway)["revoked-tokens"] == REVOKED_DIR  # a directory: the kubelet refreshes it
    assert not any("subPath" in m for m in gateway["volumeMounts"])
    assert volume(gateway_pod, "token-keys")["secret"] == {
        "secretName": f"{RELEASE}-token",
        "defaultMode": 0o440,
    }
    assert volume(gateway_pod, "revoked-tokens")["configMap"] == {"name": f"{RELEASE}-revoked-tokens"}
    # The generated Secret holds one key, id "default" (a key id is a file name in the directory).
    assert set(one(objects, "Secret", f"{RELEASE}-token")["data"]) == {"default"}


def test_signing_key_and_revocations_come_from_values() -> None:
    revoked = ["0f1e2d3c4b5a69788796a5b4c3d2e1f0", "sub:agent-leaked"]
    values = merged(
        ci_values("default"), {"tokenSecret": {"signingKeyId": "2025-06"}, "tokens": {"revoked": revoked}}
    )
    objects = render(values)
    assert env(container(pod(objects, GATEWAY), "gateway"))["KAIZEN_TOKEN_SIGNING_KEY"] == "2025-06"
    text = one(objects, "ConfigMap", f"{RELEASE}-revoked-tokens")["data"]["revoked"]
    # The file as the gateway parses it (controllers.gateway.auth.Revocations): comments and blanks dropped.
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    assert [line for line in lines if line] == revoked


def test_bad_key_ids_and_revocations_are_refused_by_the_schema() -> None:
    import helm_python as helm

    for bad in ({"tokenSecret": {"signingKeyId": "no spaces"}}, {"tokens": {"revoked": ["a b"]}}):
        with pytest.raises(helm.HelmValuesError):
            render(merged(ci_values("default"), bad))


def auth_delegator_bindings(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in find(objects, "ClusterRoleBinding") if b["roleRef"]["name"] == "system:auth-delegator"]


def test_gateway_is_an_auth_delegator_only_when_kubernetes_auth_is_on() -> None:
    [binding] = auth_delegator_bindings(render(ci_values("default")))
    assert binding["metadata"]["name"] == f"{GATEWAY}-auth-delegator"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": GATEWAY, "namespace": NAMESPACE}]
    # Embedded: the gateway runs in the operator's pod, as the operator's ServiceAccount.
    [embedded] = auth_delegator_bindings(render(ci_values("embedded")))
    assert embedded["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": NAMESPACE}]

    objects = render(merged(ci_values("default"), NO_K8S_AUTH))
    assert not auth_delegator_bindings(objects)
    gateway_pod = pod(objects, GATEWAY)
    assert gateway_pod["automountServiceAccountToken"] is False
    variables = env(container(gateway_pod, "gateway"))
    assert variables["KAIZEN_KUBERNETES_AUTH"] == "false"
    assert "KAIZEN_TOKEN_AUDIENCE" not in variables


def rules_as_actions(role: dict[str, Any]) -> set[str]:
    out = set()
    for rule in role["rules"]:
        assert rule["apiGroups"] == [API_GROUP], rule
        assert "resourceNames" not in rule
        out |= {f"{resource}/{verb}" for resource in rule["resources"] for verb in rule["verbs"]}
    return out


@pytest.mark.parametrize("value_set", ["default", "namespaced", "embedded"])
def test_the_gateway_roles_grant_exactly_their_roles_actions(value_set: str) -> None:
    objects = render(ci_values(value_set))
    roles = {
        r["metadata"]["name"]: r
        for r in find(objects, "ClusterRole")
        if r["metadata"]["name"].startswith(GATEWAY)
    }
    # Every role but admin (which is "everything", never bound as a role) has its ClusterRole.
    assert set(roles) == {f"{GATEWAY}-{role.value}" for role in Role if role is not Role.ADMIN}
    expected = {
        "agent": {"experience/create", "feedback/create", "routes/use"},
        "reviewer": {"reviews/list", "reviews/create", "feedback/create", "experiments/get"},
        "operator": {"routes/get", "routes/update", "policies/update", "experiments/get"},
        "feedback": {"feedback/create"},
    }
    for name, actions in expected.items():
        role = roles[f"{GATEWAY}-{name}"]
        assert rules_as_actions(role) == actions
        # The same table the gateway applies to a Kaizen token of that role.
        assert actions == {a.value for a in GRANTS[Role(name)]}
        assert not any(
            k.startswith("rbac.authorization.k8s.io/aggregate-to") for k in role["metadata"]["labels"]
        )


def test_aggregation_into_the_built_in_roles_is_opt_in() -> None:
    values = merged(ci_values("default"), {"rbac": {"gatewayRoles": {"aggregateToDefaultRoles": True}}})
    labels = {
        r["metadata"]["name"]: r["metadata"]["labels"]
        for r in find(render(values), "ClusterRole")
        if r["metadata"]["name"].startswith(GATEWAY)
    }
    edit, admin = (
        "rbac.authorization.k8s.io/aggregate-to-edit",
        "rbac.authorization.k8s.io/aggregate-to-admin",
    )
    for role in ("agent", "reviewer", "feedback"):
        assert labels[f"{GATEWAY}-{role}"][edit] == labels[f"{GATEWAY}-{role}"][admin] == "true"
    assert edit not in labels[f"{GATEWAY}-operator"]  # repointing routes stays with namespace admins
    assert labels[f"{GATEWAY}-operator"][admin] == "true"


def test_operator_is_bound_to_the_gateway_operator_role() -> None:
    subject = {"kind": "ServiceAccount", "name": OPERATOR, "namespace": NAMESPACE}
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{GATEWAY}-operator"}
    cluster_wide = one(render(ci_values("default")), "ClusterRoleBinding", f"{OPERATOR}-gateway")
    assert cluster_wide["roleRef"] == role_ref
    assert cluster_wide["subjects"] == [subject]
    # Namespaced mode: a RoleBinding in each watched namespace, no cluster-wide binding.
    values = ci_values("namespaced")
    objects = render(values)
    assert not find(objects, "ClusterRoleBinding", f"{OPERATOR}-gateway")
    bindings = find(objects, "RoleBinding", f"{OPERATOR}-gateway")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == sorted(
        values["operator"]["watchNamespaces"]
    )
    assert all(b["roleRef"] == role_ref and b["subjects"] == [subject] for b in bindings)


def test_nothing_binds_the_agent_or_reviewer_roles() -> None:
    """The chart defines them; who may act as an agent or reviewer is the platform team's choice."""
    for value_set in ("default", "namespaced", "embedded"):
        objects = render(ci_values(value_set))
        bound = {
            b["roleRef"]["name"]
            for b in [*find(objects, "ClusterRoleBinding"), *find(objects, "RoleBinding")]
        }
        assert not {f"{GATEWAY}-agent", f"{GATEWAY}-reviewer"} & bound


def test_network_policies_are_on_by_default_and_admit_what_must_flow() -> None:
    objects = render(ci_values("default"))
    gateway = one(objects, "NetworkPolicy", GATEWAY)["spec"]
    operator = one(objects, "NetworkPolicy", OPERATOR)["spec"]
    assert gateway["policyTypes"] == operator["policyTypes"] == ["Ingress"]  # egress is not restricted
    # Default: any source may reach the gateway's port (agents, the operator, scrapers), nothing else.
    assert gateway["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]
    assert operator["ingress"] == [
        {"ports": [{"port": 8080, "protocol": "TCP"}, {"port": 8081, "protocol": "TCP"}]}
    ]
    # Both the gateway Deployment and the embedded operator pod (which serves the gateway) are selected.
    selector = gateway["podSelector"]["matchLabels"]
    for value_set, workload in (("default", GATEWAY), ("embedded", OPERATOR)):
        labels = one(render(ci_values(value_set)), "Deployment", workload)["spec"]["template"]["metadata"][
            "labels"
        ]
        assert selector.items() <= labels.items()


def test_restricting_gateway_sources_still_admits_the_operator_and_scrapers() -> None:
    values = ci_values("namespaced")
    ingress = one(render(values), "NetworkPolicy", GATEWAY)["spec"]["ingress"]
    agents, internal = ingress
    assert agents["from"] == values["networkPolicy"]["gatewayFrom"]
    assert internal["ports"] == [{"port": 8000, "protocol": "TCP"}]
    operator_pods = {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "kaizen",
                "app.kubernetes.io/instance": RELEASE,
                "app.kubernetes.io/component": "operator",
            }
        }
    }
    assert internal["from"] == [operator_pods, *values["networkPolicy"]["metricsFrom"]]
    operator_ingress = one(render(values), "NetworkPolicy", OPERATOR)["spec"]["ingress"]
    assert operator_ingress[0]["from"] == values["networkPolicy"]["metricsFrom"]


def test_the_route_allowlist_and_body_limits_reach_the_gateway_and_the_gateway_accepts_them() -> None:
    from controllers.gateway.context import GatewaySettings

    settings = {
        "routeAllowedHosts": ["*.models.svc.cluster.local", "!*.kube-system.svc"],
        "maxBodyBytes": 65536,
    }
    variables = env(
        container(pod(render(merged(ci_values("default"), {"gateway": settings})), GATEWAY), "gateway")
    )
    assert variables["KAIZEN_ROUTE_ALLOWED_HOSTS"] == "*.models.svc.cluster.local,!*.kube-system.svc"
    assert (variables["KAIZEN_MAX_BODY_BYTES"], variables["KAIZEN_PROXY_MAX_BODY_BYTES"]) == (
        "65536",
        "8388608",
    )
    defaults = env(container(pod(render(ci_values("default")), GATEWAY), "gateway"))
    assert "KAIZEN_ROUTE_ALLOWED_HOSTS" not in defaults  # the gateway's own default: in-cluster names
    parsed = GatewaySettings(
        token_secret="x",
        route_allowed_hosts=tuple(variables["KAIZEN_ROUTE_ALLOWED_HOSTS"].split(",")),
        max_body_bytes=int(variables["KAIZEN_MAX_BODY_BYTES"]),
    )
    assert parsed.max_body_bytes == 65536


def test_the_widget_origins_reach_the_gateway_and_the_gateway_accepts_them() -> None:
    from controllers.gateway.widget import parse_origins

    origins = ["https://app.example.com", "http://127.0.0.1:8080"]
    values = merged(ci_values("default"), {"gateway": {"widgetOrigins": origins}})
    variables = env(container(pod(render(values), GATEWAY), "gateway"))
    assert parse_origins(variables["KAIZEN_WIDGET_ORIGINS"]) == tuple(origins)
    defaults = env(container(pod(render(ci_values("default")), GATEWAY), "gateway"))
    assert "KAIZEN_WIDGET_ORIGINS" not in defaults  # none: no cross-origin access
