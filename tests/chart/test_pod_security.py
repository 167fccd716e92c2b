"""Every pod the chart can make meets the "restricted" Pod Security Standard, and the check can fail."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.chart.chart import ci_values, pod_specs, render
from tests.chart.pod_security import violations

VALUE_SETS = ("default", "namespaced", "embedded")


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_rendered_pod_spec_meets_the_restricted_standard(value_set: str) -> None:
    pods = list(pod_specs(render(ci_values(value_set))))
    assert pods, "the chart rendered no workloads"
    for where, pod in pods:
        assert violations(pod) == [], where


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_container_has_a_read_only_root_and_resources(value_set: str) -> None:
    for where, pod in pod_specs(render(ci_values(value_set))):
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, f"{where}/{c['name']}"
            assert c["resources"]["requests"], f"{where}/{c['name']}"
            assert c["resources"]["limits"]["memory"], f"{where}/{c['name']}"
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], f"{where}/{c['name']}"


COMPLIANT: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
    ],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}

# (what breaks the standard, a change to the compliant pod, words the finding must contain)
BREACHES: list[tuple[str, dict[str, Any], str]] = [
    ("host network", {"hostNetwork": True}, "hostNetwork"),
    ("host PID", {"hostPID": True}, "hostPID"),
    ("host IPC", {"hostIPC": True}, "hostIPC"),
    ("hostPath volume", {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "hostPath is forbidden"),
    (
        "gcePersistentDisk volume",
        {"volumes": [{"name": "d", "gcePersistentDisk": {}}]},
        "not an allowed volume type",
    ),
    ("privileged", {"containers.0.securityContext.privileged": True}, "privileged"),
    (
        "escalation allowed",
        {"containers.0.securityContext.allowPrivilegeEscalation": True},
        "allowPrivilegeEscalation",
    ),
    (
        "escalation unset",
        {"containers.0.securityContext.allowPrivilegeEscalation": None},
        "allowPrivilegeEscalation",
    ),
    ("root allowed", {"securityContext.runAsNonRoot": None}, "runAsNonRoot"),
    ("container overrides non-root", {"containers.0.securityContext.runAsNonRoot": False}, "runAsNonRoot"),
    ("uid 0", {"containers.0.securityContext.runAsUser": 0}, "runAsUser must not be 0"),
    ("no seccomp", {"securityContext.seccompProfile": None}, "seccompProfile"),
    (
        "unconfined seccomp",
        {"containers.0.securityContext.seccompProfile": {"type": "Unconfined"}},
        "Unconfined",
    ),
    (
        "capabilities kept",
        {"containers.0.securityContext.capabilities": {"drop": ["NET_RAW"]}},
        "drop must include ALL",
    ),
    (
        "capability added",
        {"containers.0.securityContext.capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}},
        "SYS_ADMIN",
    ),
    ("host port", {"containers.0.ports": [{"containerPort": 80, "hostPort": 80}]}, "hostPort"),
    (
        "unsafe sysctl",
        {"securityContext.sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
        "kernel.msgmax",
    ),
    ("SELinux user", {"securityContext.seLinuxOptions": {"user": "root"}}, "seLinuxOptions.user"),
    ("unmasked proc", {"containers.0.securityContext.procMount": "Unmasked"}, "procMount"),
    (
        "init container escalates",
        {"initContainers": [{"name": "init", "securityContext": {"capabilities": {"drop": ["ALL"]}}}]},
        "initContainers[init]",
    ),
]


def test_a_compliant_pod_passes() -> None:
    assert violations(COMPLIANT) == []


def test_net_bind_service_is_the_one_capability_a_container_may_add() -> None:
    pod = _with(
        COMPLIANT,
        {"containers.0.securityContext.capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
    )
    assert violations(pod) == []


@pytest.mark.parametrize(("breach", "change", "words"), BREACHES, ids=[b[0] for b in BREACHES])
def test_each_breach_of_the_standard_is_reported(breach: str, change: dict[str, Any], words: str) -> None:
    found = violations(_with(COMPLIANT, change))
    assert any(words in finding for finding in found), (breach, found)


def _with(pod: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``pod`` with dotted paths set (None deletes the key)."""
    out = copy.deepcopy(pod)
    for path, value in change.items():
        *parents, last = path.split(".")
        node: Any = out
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return out
