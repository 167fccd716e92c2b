"""The generated CRDs on a real API server: they install, examples apply, kubectl shows what on-call needs."""

from __future__ import annotations

import json
import re

import yaml

from controllers.api import KINDS
from devstack.controlplane import ControlPlane
from tests.envtest.conftest import VIEWER
from tests.schemas import EXAMPLES_DIR, load_examples


def test_all_four_crds_are_established(control_plane: ControlPlane) -> None:
    result = control_plane.kubectl("get", "crd", "-l", "app.kubernetes.io/part-of=kaizen", "-o", "json")
    crds = json.loads(result.stdout)["items"]
    assert sorted(c["spec"]["names"]["kind"] for c in crds) == sorted(k.KIND for k in KINDS)
    for crd in crds:
        established = [c["status"] for c in crd["status"]["conditions"] if c["type"] == "Established"]
        assert established == ["True"]


def test_every_example_applies_and_comes_back_with_defaults(
    control_plane: ControlPlane, namespace: str
) -> None:
    result = control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR))
    assert len(re.findall(r" created$", result.stdout, re.M)) == len(load_examples())
    policy = json.loads(control_plane.kubectl("get", "lp", "coder-dpo", "-n", namespace, "-o", "json").stdout)
    # Fields the example leaves out come back with the schema's defaults (kubectl get -o yaml shows them).
    assert policy["spec"]["training"]["hyperparameters"]["gradientAccumulationSteps"] == 8
    assert policy["spec"]["serving"]["maxReplicas"] == 1
    assert policy["spec"]["paused"] is False
    assert policy["spec"]["pairSources"]["llmJudge"]["rubric"].startswith("Prefer the answer")
    run = json.loads(
        control_plane.kubectl("get", "tr", "coder-dpo-0001", "-n", namespace, "-o", "json").stdout
    )
    assert run["spec"]["training"]["lora"]["dropout"] == 0.05
    assert run["spec"]["training"]["scaling"]["cpusPerWorker"] == 4
    # Re-applying changes nothing: the examples are stable under defaulting. (kubectl may still say
    # "configured" for a list whose items gained defaults; the generation shows nothing changed.)
    control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR))
    listed = json.loads(control_plane.kubectl("get", "kaizen", "-n", namespace, "-o", "json").stdout)["items"]
    assert [item["metadata"]["generation"] for item in listed] == [1, 1, 1, 1]


def test_examples_lose_no_field_to_pruning(control_plane: ControlPlane, namespace: str) -> None:
    # v1.20 prunes unknown fields silently: compare what the server kept with what was sent.
    for kind, example in load_examples().items():
        sent = json.dumps({**example, "metadata": {**example["metadata"], "namespace": namespace}})
        result = control_plane.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=sent)
        stored = json.loads(result.stdout)
        assert _missing(example["spec"], stored["spec"]) == [], kind


def _missing(sent: object, stored: object, path: str = "spec") -> list[str]:
    if isinstance(sent, dict) and isinstance(stored, dict):
        return [
            p
            for k, v in sent.items()
            for p in ([f"{path}.{k}"] if k not in stored else _missing(v, stored[k], f"{path}.{k}"))
        ]
    if isinstance(sent, list) and isinstance(stored, list):
        return [
            p
            for i, (a, b) in enumerate(zip(sent, stored, strict=True))
            for p in _missing(a, b, f"{path}[{i}]")
        ]
    return []


def test_get_kaizen_prints_the_printer_columns(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR))
    status = {
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "WaitingForTraffic",
                    "message": "each variant needs 300 samples",
                    "lastTransitionTime": "2026-11-22T00:00:00Z",
                    "observedGeneration": 1,
                }
            ],
            "decision": "Continue",
            "step": 1,
            "challengerWeight": 25,
        }
    }
    _patch_status(control_plane, namespace, "experiments", "coder-dpo-0001", status)
    output = control_plane.kubectl("get", "kaizen", "-n", namespace).stdout
    headers = [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.startswith("NAME")]
    assert len(headers) == 4, output
    assert all(h[:2] == ["NAME", "READY"] and h[-1] == "AGE" for h in headers), headers
    wanted = {
        "LearningPolicy": ["REASON", "CHAMPION", "NEW PAIRS", "LAST RUN"],
        "TrainingRun": ["REASON", "POLICY", "METHOD", "ATTEMPTS", "ACCURACY"],
        "ShadowModel": ["ROLE", "REASON", "POLICY"],
        "Experiment": ["DECISION", "REASON", "STRATEGY", "SHARE"],
    }
    for kind, columns in wanted.items():
        assert any(h[2 : 2 + len(columns)] == columns for h in headers), (
            f"{kind} columns {columns} not in {headers}"
        )
    row = next(
        line for line in output.splitlines() if line.startswith("experiment.kaizen.dev/coder-dpo-0001")
    )
    # SHARE is the challenger's share of traffic in percent, not the index of the rollout step
    assert row.split()[1:6] == ["False", "Continue", "WaitingForTraffic", "ABTest", "25"]


def _patch_status(
    plane: ControlPlane, namespace: str, plural: str, name: str, body: dict[str, object]
) -> None:
    # kubectl 1.20-era servers: write status through the raw subresource endpoint.
    current = json.loads(plane.kubectl("get", plural, name, "-n", namespace, "-o", "json").stdout)
    current.update(body)
    plane.kubectl(
        "replace",
        "--raw",
        f"/apis/kaizen.dev/v1alpha1/namespaces/{namespace}/{plural}/{name}/status",
        "-f",
        "-",
        stdin=json.dumps(current),
    )


def test_kubectl_explain_shows_descriptions(control_plane: ControlPlane) -> None:
    output = control_plane.kubectl("explain", "trainingrun.spec").stdout
    assert "A resolved, frozen copy of a policy's training settings" in output
    assert "training\t<Object> -required-" in output
    nested = control_plane.kubectl("explain", "learningpolicy.spec.training.lora.rank").stdout
    assert "Adapter rank r." in nested


def test_short_names_and_category_resolve(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES_DIR))
    for short in ("lp", "tr", "sm", "exp"):
        assert control_plane.kubectl("get", short, "-n", namespace, "-o", "name").stdout.strip()
    names = control_plane.kubectl("get", "kaizen", "-n", namespace, "-o", "name").stdout.split()
    assert len(names) == 4


def test_rbac_is_enforced_for_users_without_bindings(control_plane: ControlPlane, namespace: str) -> None:
    denied = control_plane.kubectl("get", "lp", "-n", namespace, user=VIEWER, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


def test_status_is_a_subresource_so_spec_writes_ignore_status(
    control_plane: ControlPlane, namespace: str
) -> None:
    example = load_examples()["ShadowModel"]
    example = {**example, "metadata": {**example["metadata"], "namespace": namespace}}
    example["status"] = {"role": "Champion"}
    control_plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example))
    stored = json.loads(
        control_plane.kubectl("get", "sm", "coder-dpo-0001", "-n", namespace, "-o", "json").stdout
    )
    assert "status" not in stored or stored["status"].get("role") != "Champion"
