"""What a RayJob's pods would be given, as pure functions: the env the kubelet would set, the volumes
the local runtime cannot mount, and the entrypoint wrapped to start in a fresh, empty folder.

A KubeRay cluster's head and workers see only their image, the ``env``/``envFrom`` of their Ray
container (index 0, as KubeRay reads it) with Secrets and ConfigMaps resolved by the kubelet, the
volumes they mount and their ServiceAccount. The local stand-in runs every process of a job on one
Ray head, so a variable reaches the job only if the head and every worker group declare it with the
same value: what works here then works on both kinds of pod in a cluster.

Resolution follows the kubelet: ``envFrom`` first (with ``prefix``; keys that are not valid variable
names are skipped), then ``env`` in order, where ``$(NAME)`` expands a variable defined before it and
``$$`` is a literal ``$``. A missing Secret, ConfigMap or key that is not ``optional`` is the
kubelet's ``CreateContainerConfigError``, with its message. A missing ServiceAccount is refused as the
ServiceAccount admission plugin refuses the pod.

A ServiceAccount grants no credentials here: IRSA and Workload Identity exchange the pod's projected
token for cloud credentials through the cloud's metadata and STS services, which this machine lacks.
For the local runtime, credentials must come from a Secret (``envFrom``/``secretKeyRef``).
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from controllers.api.kindinfo import Resource
from controllers.builders.jobspec import JobSpec

SECRET, CONFIG_MAP, SERVICE_ACCOUNT = "Secret", "ConfigMap", "ServiceAccount"
RESOURCES = {
    SECRET: Resource("", "v1", "secrets"),
    CONFIG_MAP: Resource("", "v1", "configmaps"),
    SERVICE_ACCOUNT: Resource("", "v1", "serviceaccounts"),
}
Ref = tuple[str, str]  # (kind, name) in the RayJob's namespace
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_MOUNTABLE = {"emptyDir"}  # node-local scratch (e.g. /dev/shm): the local machine has its own
# Starts the entrypoint ($1) in a new empty folder under the head's scratch space, with its own TMPDIR,
# as a container starts in its image's working directory; the folder goes when the entrypoint ends.
_IN_FRESH_FOLDER = (
    'root=$(mktemp -d "${TMPDIR:-/tmp}/kzpod-XXXXXXXX") && mkdir "$root/work" "$root/tmp" '
    '&& cd "$root/work" || exit 1; TMPDIR="$root/tmp" sh -c "$1"; code=$?; rm -rf "$root"; exit $code'
)


class PodConfigError(ValueError):
    """A pod of the RayJob could not start as specified; the message says what is missing."""


@dataclass(frozen=True)
class Pod:
    """One kind of pod of the RayJob's cluster: the head or a worker group."""

    role: str
    spec: dict[str, Any]

    @property
    def container(self) -> dict[str, Any]:
        containers = self.spec.get("containers") or [{}]
        return dict(containers[0])

    @property
    def service_account(self) -> str | None:
        return self.spec.get("serviceAccountName") or None


def pods(rayjob: Mapping[str, Any]) -> list[Pod]:
    cluster = (rayjob.get("spec") or {}).get("rayClusterSpec") or {}
    found = [Pod("head", ((cluster.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {})]
    for group in cluster.get("workerGroupSpecs") or []:
        template = group.get("template") or {}
        found.append(Pod(f"worker group {group.get('groupName', '?')}", template.get("spec") or {}))
    return found


def references(rayjob: Mapping[str, Any]) -> set[Ref]:
    """Every Secret, ConfigMap and ServiceAccount the pods name: what to read before they can start."""
    refs: set[Ref] = set()
    for pod in pods(rayjob):
        if pod.service_account:
            refs.add((SERVICE_ACCOUNT, pod.service_account))
        refs.update(container_references(pod.container))
    return refs


def container_references(container: Mapping[str, Any]) -> set[Ref]:
    """The Secrets and ConfigMaps one container's env and envFrom name."""
    refs: set[Ref] = set()
    for source in container.get("envFrom") or []:
        refs.update(_source_refs(source, "secretRef", "configMapRef"))
    for var in container.get("env") or []:
        refs.update(_source_refs(var.get("valueFrom") or {}, "secretKeyRef", "configMapKeyRef"))
    return refs


def _source_refs(source: Mapping[str, Any], secret_field: str, config_map_field: str) -> Iterator[Ref]:
    if secret_field in source:
        yield SECRET, source[secret_field]["name"]
    if config_map_field in source:
        yield CONFIG_MAP, source[config_map_field]["name"]


def unmountable(rayjob: Mapping[str, Any]) -> str | None:
    """Why the local runtime cannot give the pods their volumes, or None when it can."""
    for pod in pods(rayjob):
        for volume in pod.spec.get("volumes") or []:
            source = next((key for key in volume if key != "name"), "?")
            if source in _MOUNTABLE:
                continue
            if source == "persistentVolumeClaim":
                claim = volume[source].get("claimName", "?")
                return (
                    f"{pod.role}: volume {volume.get('name')!r} mounts PersistentVolumeClaim {claim!r}; the "
                    "local runtime has no shared volumes: keep datasets and adapters in object storage"
                )
            return (
                f"{pod.role}: volume {volume.get('name')!r} is a {source} volume, which the local runtime "
                "cannot mount; give the job what it needs through env, envFrom or object storage"
            )
    return None


def job_env(
    rayjob: Mapping[str, Any], objects: Mapping[Ref, dict[str, Any] | None]
) -> tuple[dict[str, str], set[str]]:
    """The env every pod of the RayJob agrees on, and the names some pods set but not all alike.
    ``objects`` holds what ``references`` named, None for those that do not exist."""
    namespace = rayjob["metadata"]["namespace"]
    resolved = []
    for pod in pods(rayjob):
        if pod.service_account and objects.get((SERVICE_ACCOUNT, pod.service_account)) is None:
            raise PodConfigError(
                f"{pod.role}: error looking up service account {namespace}/{pod.service_account}: "
                f'serviceaccount "{pod.service_account}" not found'
            )
        try:
            resolved.append(container_env(pod, namespace, objects))
        except PodConfigError as error:
            raise PodConfigError(f"{pod.role}: CreateContainerConfigError: {error}") from error
    common = {k: v for k, v in resolved[0].items() if all(env.get(k) == v for env in resolved[1:])}
    differing = {name for env in resolved for name in env} - set(common)
    return common, differing


def container_env(pod: Pod, namespace: str, objects: Mapping[Ref, dict[str, Any] | None]) -> dict[str, str]:
    container = pod.container
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        data = _source_data(source, namespace, objects)
        prefix = str(source.get("prefix") or "")
        env.update((prefix + key, value) for key, value in data.items() if _ENV_NAME.fullmatch(prefix + key))
    for var in container.get("env") or []:
        if "valueFrom" in var:
            value = _value_from(var["valueFrom"], pod, namespace, objects)
            if value is not None:
                env[var["name"]] = value
        else:
            env[var["name"]] = expand(str(var.get("value") or ""), env)
    return env


def _source_data(
    source: Mapping[str, Any], namespace: str, objects: Mapping[Ref, dict[str, Any] | None]
) -> dict[str, str]:
    kind, ref = (
        (SECRET, source["secretRef"]) if "secretRef" in source else (CONFIG_MAP, source["configMapRef"])
    )
    found = objects.get((kind, ref["name"]))
    if found is None:
        if ref.get("optional"):
            return {}
        raise PodConfigError(f'{kind.lower()} "{ref["name"]}" not found')
    return _data(kind, found)


def _data(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    if kind == SECRET:
        return {key: base64.b64decode(value).decode() for key, value in (obj.get("data") or {}).items()}
    return {str(key): str(value) for key, value in (obj.get("data") or {}).items()}


def _value_from(
    value_from: Mapping[str, Any], pod: Pod, namespace: str, objects: Mapping[Ref, dict[str, Any] | None]
) -> str | None:
    for field, kind in (("secretKeyRef", SECRET), ("configMapKeyRef", CONFIG_MAP)):
        if field in value_from:
            ref = value_from[field]
            found = objects.get((kind, ref["name"]))
            if found is None:
                if ref.get("optional"):
                    return None
                raise PodConfigError(f'{kind.lower()} "{ref["name"]}" not found')
            data = _data(kind, found)
            if ref["key"] not in data:
                if ref.get("optional"):
                    return None
                raise PodConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
            return data[ref["key"]]
    path = (value_from.get("fieldRef") or {}).get("fieldPath")
    known = {"metadata.namespace": namespace, "spec.serviceAccountName": pod.service_account or "default"}
    if path in known:
        return known[path]
    raise PodConfigError(
        f"the local runtime cannot resolve valueFrom {sorted(value_from)} {path or ''}".rstrip()
        + f"; it knows secretKeyRef, configMapKeyRef and fieldRef {sorted(known)}"
    )


def expand(value: str, defined: Mapping[str, str]) -> str:
    """The kubelet's expansion: ``$(NAME)`` of a variable defined before, ``$$`` for ``$``; any other
    ``$(...)`` stays as written."""
    out, index = [], 0
    while index < len(value):
        char = value[index]
        if char == "$" and value[index + 1 : index + 2] == "$":
            out.append("$")
            index += 2
            continue
        if char == "$" and value[index + 1 : index + 2] == "(":
            end = value.find(")", index + 2)
            name = value[index + 2 : end] if end > 0 else ""
            if name in defined:
                out.append(defined[name])
                index = end + 1
                continue
        out.append(char)
        index += 1
    return "".join(out)


def in_pod(job: JobSpec, env: Mapping[str, str]) -> JobSpec:
    """The job as the pods would run it: their env under the runtime env's ``env_vars`` (Ray sets
    those over the process's own, in a cluster too), the entrypoint in a fresh, empty folder."""
    runtime_env = dict(job.runtime_env)
    declared = runtime_env.get("env_vars") or {}
    assert isinstance(declared, dict), "rayjob_status.job_spec refuses env_vars that are no mapping"
    runtime_env["env_vars"] = {**env, **declared}
    entrypoint = f"sh -c {shlex.quote(_IN_FRESH_FOLDER)} kzpod {shlex.quote(job.entrypoint)}"
    return replace(job, entrypoint=entrypoint, runtime_env=runtime_env)
