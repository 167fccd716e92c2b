"""The reads ``kaizen get`` and ``kaizen describe`` make of the API server, and why one failed.

Synchronous, on the ``kubernetes`` package with the operator's credential loading (the pod's
ServiceAccount, else ``$KUBECONFIG`` or ``~/.kube/config``), as ``kubectl`` reads. Every failure
becomes a ``ReadError`` whose sentence says what to do next: a missing object names the command that
lists its kind, an unreachable server names the server and the kubeconfig it came from, a refusal
names the ``kubectl auth can-i`` question to ask.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controllers.api.kindinfo import KindInfo

CONNECT_SECONDS = 5.0  # no cluster must not mean a hung command
READ_SECONDS = 30.0
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ReadError(RuntimeError):
    """Why a read failed, in a sentence that says what to do next."""


def kubeconfig_source() -> str:
    return os.environ.get("KUBECONFIG") or "~/.kube/config"


def default_namespace() -> str:
    """The kubeconfig context's namespace, else the pod's own namespace, else ``default`` (kubectl's rule)."""
    from kubernetes import config as kube_config

    try:
        _, active = kube_config.list_kube_config_contexts(config_file=os.environ.get("KUBECONFIG") or None)  # type: ignore[no-untyped-call]
        namespace = (active.get("context") or {}).get("namespace")
        if namespace:
            return str(namespace)
    except (kube_config.ConfigException, KeyError, TypeError, OSError):
        if IN_CLUSTER_NAMESPACE.is_file():
            return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    return "default"


def api_client(*, retries: bool = True) -> Any:
    """A ``kubernetes`` client with the operator's credential loading, for every command of the CLI.
    A kubeconfig that skips TLS verification chose to; like kubectl, the CLI does not warn about it on
    every call. ``retries=False``: one try, as kubectl does not retry a refused connection either."""
    from kubernetes.client import ApiClient
    from urllib3.exceptions import InsecureRequestWarning

    from controllers.runtime.kube import load_configuration

    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    configuration = load_configuration()
    if not retries:
        configuration.retries = False
    return ApiClient(configuration)


@dataclass
class Cluster:
    """The clients of one API server, and its address for messages."""

    custom: Any  # kubernetes.client.CustomObjectsApi
    core: Any  # kubernetes.client.CoreV1Api
    server: str

    @classmethod
    def connect(cls) -> Cluster:
        try:
            from kubernetes.client import CoreV1Api, CustomObjectsApi
        except ImportError as missing:
            raise ReadError(
                f"the kubernetes package is not installed ({missing.name}); pip install 'kaizen[operator]'"
            ) from missing

        try:
            api = api_client(retries=False)
        except Exception as error:  # no kubeconfig, a broken one, a failing credential plugin: all say why
            raise ReadError(
                f"no cluster configured ({_first_line(error)}); set KUBECONFIG to a kubeconfig file"
                f" (now: {kubeconfig_source()}) or run inside a pod"
            ) from error
        return cls(CustomObjectsApi(api), CoreV1Api(api), str(api.configuration.host))

    @contextmanager
    def talking(self, info: KindInfo, namespace: str | None, name: str | None = None) -> Iterator[None]:
        """Turn what the client raises into a ReadError that says what to do next."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, InsecureRequestWarning

        try:
            with warnings.catch_warnings():
                # a kubeconfig that skips TLS verification chose to; kubectl does not warn about it either
                warnings.simplefilter("ignore", InsecureRequestWarning)
                yield
        except ApiException as error:
            raise ReadError(_refusal(self.server, info, namespace, name, error)) from error
        except (HTTPError, OSError) as error:
            raise ReadError(
                f"cannot reach the Kubernetes API server at {self.server} ({type(error).__name__});"
                f" check that the cluster is running and that KUBECONFIG (now: {kubeconfig_source()})"
                " names the right one"
            ) from error

    def objects(
        self, info: KindInfo, namespace: str | None, selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        """The kind's objects in ``namespace`` (None: every namespace), sorted by namespace and name,
        and the list's resourceVersion (a watch starts there)."""
        found = info.resource
        timeout = (CONNECT_SECONDS, READ_SECONDS)
        with self.talking(info, namespace):
            if namespace is None:
                listed = self.custom.list_cluster_custom_object(
                    found.group,
                    found.version,
                    found.plural,
                    label_selector=selector,
                    _request_timeout=timeout,
                )
            else:
                listed = self.custom.list_namespaced_custom_object(
                    found.group,
                    found.version,
                    namespace,
                    found.plural,
                    label_selector=selector,
                    _request_timeout=timeout,
                )
        items = sorted(listed.get("items") or [], key=_place)
        return items, str((listed.get("metadata") or {}).get("resourceVersion") or "")

    def get(self, info: KindInfo, namespace: str, name: str) -> dict[str, Any]:
        found = info.resource
        with self.talking(info, namespace, name):
            body: dict[str, Any] = self.custom.get_namespaced_custom_object(
                found.group,
                found.version,
                namespace,
                found.plural,
                name,
                _request_timeout=(CONNECT_SECONDS, READ_SECONDS),
            )
        return body

    def events(self, info: KindInfo, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """core/v1 Events about an object (by kind and name; ``describing.events_about`` checks the uid)."""
        meta = obj["metadata"]
        selector = f"involvedObject.kind={info.kind},involvedObject.name={meta['name']}"
        with self.talking(info, meta.get("namespace")):
            answer = self.core.list_namespaced_event(
                meta["namespace"],
                field_selector=selector,
                _request_timeout=(CONNECT_SECONDS, READ_SECONDS),
                _preload_content=False,  # the Events as the server wrote them, not the client's models
            )
        items: list[dict[str, Any]] = json.loads(answer.data).get("items") or []
        return items

    def watch(
        self, info: KindInfo, namespace: str | None, since: str, selector: str = "", seconds: int = 0
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Changes after resourceVersion ``since``: (ADDED | MODIFIED | DELETED, object), for ``seconds``
        (0: until the caller stops)."""
        from kubernetes.watch import Watch

        found = info.resource
        options: dict[str, Any] = {"resource_version": since, "label_selector": selector}
        if seconds > 0:
            options["timeout_seconds"] = seconds
        if namespace is None:
            call = self.custom.list_cluster_custom_object
            args: tuple[str, ...] = (found.group, found.version, found.plural)
        else:
            call = self.custom.list_namespaced_custom_object
            args = (found.group, found.version, namespace, found.plural)
        with self.talking(info, namespace):
            for event in Watch().stream(call, *args, **options):  # type: ignore[no-untyped-call]
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    yield str(event["type"]), event["object"]


def _place(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _refusal(server: str, info: KindInfo, namespace: str | None, name: str | None, error: Any) -> str:
    where = f"namespace {namespace}" if namespace else "any namespace"
    plural = info.plural
    if error.status == 404 and name:
        return f'{plural} "{name}" not found in {where}; list them with: kaizen get {plural} -n {namespace}'
    if error.status == 404:
        return (
            f"the API server at {server} does not serve {info.crd_name}; install Kaizen's CRDs"
            f" (check with: kubectl get crd {info.crd_name})"
        )
    if error.status in (401, 403):
        verb = "get" if name else "list"
        scope = f"-n {namespace}" if namespace else "--all-namespaces"
        return (
            f"the API server at {server} refused ({error.status} {error.reason}); ask"
            f" `kubectl auth can-i {verb} {info.crd_name} {scope}`"
        )
    return f"the API server at {server} answered {error.status} {error.reason}"


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
