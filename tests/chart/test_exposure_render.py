"""The values a real cluster needs, rendered through the real Helm library: the operator's default object
storage (a credentials Secret, an endpoint, a region) and the gateway exposed by an Ingress or a Gateway API
HTTPRoute. The Ingress is also checked by a real API server (server-side dry run)."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import pytest

from devstack.controlplane import ControlPlane
from tests.chart.chart import NAMESPACE, ci_values, container, env, find, merged, notes, one, render

OPERATOR = "kaizen-operator"
GATEWAY = "kaizen-gateway"
STORAGE_DIR = "/var/run/secrets/kaizen/storage"


def operator_container(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = one(render(values), "Deployment", OPERATOR)["spec"]["template"]["spec"]
    return pod, container(pod, "operator")


def test_storage_values_become_the_operators_environment_and_a_read_only_mount() -> None:
    pod, operator = operator_container(ci_values("cloud"))
    assert operator["envFrom"] == [{"secretRef": {"name": "kaizen-storage"}}]
    variables = env(operator)
    assert variables["AWS_ENDPOINT_URL"] == "http://minio.storage:9000"
    assert variables["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in variables  # gcsKeyFile is off
    mount = {"name": "storage-credentials", "mountPath": STORAGE_DIR, "readOnly": True}
    assert mount in operator["volumeMounts"]
    assert {"name": "storage-credentials", "secret": {"secretName": "kaizen-storage"}} in pod["volumes"]
    # The gateway never gets the storage credentials: it writes no snapshots.
    gateway_pod = one(render(ci_values("cloud")), "Deployment", GATEWAY)["spec"]["template"]["spec"]
    assert "envFrom" not in container(gateway_pod, "gateway")
    assert "storage-credentials" not in [v["name"] for v in gateway_pod["volumes"]]


def test_a_gcs_key_file_in_the_secret_is_pointed_at_by_google_application_credentials() -> None:
    values = merged(ci_values("cloud"), {"storage": {"gcsKeyFile": True}})
    _, operator = operator_container(values)
    assert env(operator)["GOOGLE_APPLICATION_CREDENTIALS"] == f"{STORAGE_DIR}/credentials.json"
    # Without a Secret there is no file to point at, whatever gcsKeyFile says.
    _, bare = operator_container(merged(ci_values("default"), {"storage": {"gcsKeyFile": True}}))
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env(bare)


def test_without_storage_values_the_operator_uses_its_pod_identity() -> None:
    pod, operator = operator_container(ci_values("default"))
    assert "envFrom" not in operator
    assert not {"AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"} & set(env(operator))
    assert "storage-credentials" not in [v["name"] for v in pod["volumes"]]


def test_service_account_annotations_carry_irsa_to_the_operators_account() -> None:
    account = one(render(ci_values("cloud")), "ServiceAccount", OPERATOR)
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/kaizen-operator"
    }


def test_ingress_and_http_route_are_off_by_default() -> None:
    objects = render(ci_values("default"))
    assert not find(objects, "Ingress")
    assert not find(objects, "HTTPRoute")


@pytest.mark.parametrize("port", [8000, 9443])
def test_ingress_sends_every_path_of_its_host_to_the_gateway_service_over_tls(port: int) -> None:
    objects = render(merged(ci_values("cloud"), {"gateway": {"service": {"port": port}}}))
    ingress = one(objects, "Ingress", GATEWAY)
    service = one(objects, "Service", GATEWAY)
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["metadata"]["namespace"] == service["metadata"]["namespace"] == NAMESPACE
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["kaizen.example.com"], "secretName": "kaizen-gateway-tls"}]
    [rule] = spec["rules"]
    assert rule["host"] == "kaizen.example.com"
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"] == {"number": service["spec"]["ports"][0]["port"]} == {"number": port}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "8m"


def test_ingress_without_a_tls_secret_has_no_tls_block() -> None:
    values = merged(
        ci_values("cloud"), {"gateway": {"ingress": {"tls": {"secretName": ""}, "className": ""}}}
    )
    spec = one(render(values), "Ingress", GATEWAY)["spec"]
    assert "tls" not in spec
    assert "ingressClassName" not in spec  # the cluster's default class


def test_in_embedded_mode_the_ingress_reaches_the_operator_pod_that_serves_the_gateway() -> None:
    values = merged(ci_values("embedded"), {"gateway": {"ingress": {"enabled": True, "host": "k.example"}}})
    objects = render(values)
    backend = one(objects, "Ingress", GATEWAY)["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    service = one(objects, "Service", backend["service"]["name"])
    pod_labels = one(objects, "Deployment", OPERATOR)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_http_route_attaches_to_the_named_gateway_and_backs_onto_the_gateway_service() -> None:
    objects = render(ci_values("cloud"))
    route = one(objects, "HTTPRoute", GATEWAY)
    service = one(objects, "Service", GATEWAY)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["namespace"] == NAMESPACE
    spec = route["spec"]
    assert spec["parentRefs"] == [{"name": "public", "namespace": "gateway-system", "sectionName": "https"}]
    assert spec["hostnames"] == ["kaizen.example.com"]
    [rule] = spec["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    # A Service backendRef: group and kind default to core Service; the port is a number (no names).
    assert rule["backendRefs"] == [
        {"name": service["metadata"]["name"], "port": service["spec"]["ports"][0]["port"]}
    ]
    assert isinstance(rule["backendRefs"][0]["port"], int)


def test_http_route_without_hostnames_takes_the_listeners() -> None:
    values = merged(ci_values("cloud"), {"gateway": {"httpRoute": {"hostnames": []}}})
    assert "hostnames" not in one(render(values), "HTTPRoute", GATEWAY)["spec"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"ingress": {"enabled": True, "host": ""}}, "gateway.ingress.host is required"),
        ({"httpRoute": {"enabled": True, "parentRefs": []}}, "gateway.httpRoute.parentRefs is required"),
    ],
)
def test_exposure_without_its_required_value_fails_saying_what_to_set(
    override: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=message) as rejected:
        render(merged(ci_values("default"), {"gateway": override}))
    assert "e.g." in str(rejected.value)


def test_the_api_server_accepts_the_rendered_ingress(chart_plane: ControlPlane) -> None:
    ingress = one(render(ci_values("cloud")), "Ingress", GATEWAY)
    done = chart_plane.kubectl(
        "apply", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(ingress), check=False
    )
    assert done.returncode == 0, done.stderr
    accepted = json.loads(done.stdout)
    assert accepted["spec"]["rules"] == ingress["spec"]["rules"]
    assert accepted["spec"]["tls"] == ingress["spec"]["tls"]


def test_notes_name_the_trainer_image_to_put_in_policies_and_the_storage_doc() -> None:
    text = notes(ci_values("default"))
    assert "spec.training.scaling.image: ghcr.io/kaizen-dev/trainer:0.1.0-gpu" in text
    assert "docs/storage.md" in text
    mirrored = notes(
        merged(ci_values("default"), {"trainerImage": {"repository": "registry.example/trainer"}})
    )
    assert "spec.training.scaling.image: registry.example/trainer:0.1.0-gpu" in mirrored


def test_every_file_the_notes_tell_users_to_apply_exists() -> None:
    from tests.schemas import ROOT

    text = notes(ci_values("namespaced"))
    applied = [line.split(" -f ", 1)[1].split()[0] for line in text.splitlines() if "kubectl apply" in line]
    assert "examples/prerequisites/storage-credentials.yaml" in applied
    assert "examples/learningpolicy-coder-dpo.yaml" in applied
    missing = [path for path in applied if not (ROOT / path).is_file()]
    assert not missing, f"NOTES.txt tells users to apply files that do not exist: {missing}"
