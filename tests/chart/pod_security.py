"""The Kubernetes "restricted" Pod Security Standard, as a function over a pod spec.

Written from the published standard (kubernetes.io/docs/concepts/security/pod-security-standards/),
policy by policy: the Baseline controls that Restricted includes, then Restricted's own. The
clusters these tests run on (v1.20) have no Pod Security Admission, so this function is the gate.
``violations`` returns one sentence per broken rule, naming the container and the field.
"""

from __future__ import annotations

from typing import Any

# Baseline: the capabilities a container may add (Restricted narrows this to NET_BIND_SERVICE).
RESTRICTED_ADDABLE_CAPABILITIES = {"NET_BIND_SERVICE"}
ALLOWED_VOLUME_SOURCES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
ALLOWED_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}


def _containers(pod: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    groups = ("initContainers", "containers", "ephemeralContainers")
    return [(f"{group}[{c.get('name', '?')}]", c) for group in groups for c in pod.get(group) or []]


def violations(pod: dict[str, Any]) -> list[str]:
    """Every way ``pod`` (a PodSpec) breaks the restricted standard; empty when it meets it."""
    pod_sc = pod.get("securityContext") or {}
    found = _pod_baseline(pod, pod_sc) + _volumes(pod) + _pod_restricted(pod_sc)
    # Restricted: non-root and seccomp, satisfied at pod level or by every container.
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    for where, c in _containers(pod):
        sc = c.get("securityContext") or {}
        found += _container_baseline(where, c, sc)
        found += _container_restricted(where, sc, pod_non_root=pod_non_root, pod_seccomp=pod_seccomp)
    return found


def _pod_baseline(pod: dict[str, Any], pod_sc: dict[str, Any]) -> list[str]:
    """Baseline: host namespaces, HostProcess, sysctls, SELinux, AppArmor (pod level)."""
    found: list[str] = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"spec.{field} must be unset or false")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        found.append("spec.securityContext.windowsOptions.hostProcess must be unset or false")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"spec.securityContext.sysctls: {sysctl.get('name')} is not a safe sysctl")
    found += _selinux("spec.securityContext", pod_sc)
    found += _apparmor("spec.securityContext", pod_sc)
    return found


def _volumes(pod: dict[str, Any]) -> list[str]:
    """Baseline: hostPath volumes; Restricted: only the listed volume sources."""
    found: list[str] = []
    for volume in pod.get("volumes") or []:
        sources = set(volume) - {"name"}
        if "hostPath" in sources:
            found.append(f"volume {volume.get('name')}: hostPath is forbidden")
        for source in sources - ALLOWED_VOLUME_SOURCES - {"hostPath"}:
            found.append(f"volume {volume.get('name')}: {source} is not an allowed volume type")
    return found


def _pod_restricted(pod_sc: dict[str, Any]) -> list[str]:
    """Restricted, pod level: an allowed seccomp type when one is set, and not running as root."""
    found: list[str] = []
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        found.append(
            f"spec.securityContext.seccompProfile.type {pod_seccomp} must be RuntimeDefault or Localhost"
        )
    if pod_sc.get("runAsUser") == 0:
        found.append("spec.securityContext.runAsUser must not be 0")
    return found


def _container_baseline(where: str, c: dict[str, Any], sc: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if sc.get("privileged"):
        found.append(f"{where}: securityContext.privileged must be unset or false")
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        found.append(f"{where}: windowsOptions.hostProcess must be unset or false")
    for port in c.get("ports") or []:
        if port.get("hostPort"):
            found.append(f"{where}: hostPort {port['hostPort']} is forbidden")
    if sc.get("procMount", "Default") != "Default":
        found.append(f"{where}: securityContext.procMount must be Default")
    found += _selinux(f"{where}: securityContext", sc)
    found += _apparmor(f"{where}: securityContext", sc)
    return found


def _container_restricted(
    where: str, sc: dict[str, Any], *, pod_non_root: bool, pod_seccomp: str | None
) -> list[str]:
    found: list[str] = []
    if sc.get("allowPrivilegeEscalation") is not False:
        found.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
    if sc.get("runAsNonRoot") is False or not (pod_non_root or sc.get("runAsNonRoot") is True):
        found.append(f"{where}: runAsNonRoot must be true (pod or container)")
    if sc.get("runAsUser") == 0:
        found.append(f"{where}: securityContext.runAsUser must not be 0")
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in ALLOWED_SECCOMP:
        found.append(f"{where}: seccompProfile.type {seccomp} must be RuntimeDefault or Localhost")
    if seccomp is None and pod_seccomp is None:
        found.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost (pod or container)")
    capabilities = sc.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        found.append(f"{where}: capabilities.drop must include ALL")
    for added in set(capabilities.get("add") or []) - RESTRICTED_ADDABLE_CAPABILITIES:
        found.append(f"{where}: capabilities.add may only hold NET_BIND_SERVICE, not {added}")
    return found


def _selinux(where: str, sc: dict[str, Any]) -> list[str]:
    options = sc.get("seLinuxOptions") or {}
    problems = []
    if options.get("type", "") not in ALLOWED_SELINUX_TYPES:
        problems.append(f"{where}.seLinuxOptions.type {options['type']} is not allowed")
    for field in ("user", "role"):
        if options.get(field):
            problems.append(f"{where}.seLinuxOptions.{field} must be unset")
    return problems


def _apparmor(where: str, sc: dict[str, Any]) -> list[str]:
    profile = (sc.get("appArmorProfile") or {}).get("type")
    if profile is not None and profile not in ("RuntimeDefault", "Localhost"):
        return [f"{where}.appArmorProfile.type {profile} must be RuntimeDefault or Localhost"]
    return []
