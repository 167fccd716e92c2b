"""The KServe InferenceService that serves a ShadowModel's adapter: pure functions of the API objects.

KServe's huggingface runtime (``modelFormat: huggingface``) on its vLLM backend, with LoRA enabled.
The predictor runs under the ServiceAccount of ``spec.storage.serviceAccountName``: KServe's storage
initializer finds the object store's credentials through the Secrets it lists (the Secret's
``serving.kserve.io/s3-*`` annotations give endpoint, TLS and region), and IRSA / Workload Identity bind
cloud identities to it.

Dedicated mode gives each ShadowModel its own InferenceService (owned by it). The storage initializer
fetches the base to ``/mnt/models/base`` and the adapter to ``/mnt/models/adapters/<adapter>``
(``predictor.storageUris``; KServe requires the paths to share a parent below ``/``), and vLLM gets one
``--lora-modules <adapter>=<path>``: the adapter is there from the first request.

Shared mode puts several adapters on one warm base deployment named by ``serving.sharedBase``. Its
predictor never changes when an adapter joins or leaves (a changed predictor rolls every replica: minutes
of GPU cold start on the deployment that also serves the champion). It runs vLLM with runtime LoRA
updating (``VLLM_ALLOW_RUNTIME_LORA_UPDATING``, ``--enable-lora``, ``--max-loras``) and no
``--lora-modules``; the operator loads each member's adapter into every replica through the loader
beside vLLM in each pod (``controllers.builders.loader_sidecar``, ``controllers.reconcile.lora``). Only
metadata follows the members: every member is a (non-controlling) owner, so the base goes away with its
last member, and the adapters' digests are recorded.

The shared base's ServiceAccount is the members' ``spec.storage.serviceAccountName``, and its loader
reads the store with their ``secretRef``, ``endpoint`` and ``region``: all members must name the same
(or none), since one pod identity reads every adapter; a member naming another is refused with
InvalidSpec naming that field.

The adapter's served name is the ShadowModel's name (``model: <name>`` in an OpenAI request on
``<status.address.url>/openai/v1``); the base is served under its own model name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controllers.api.common import API_VERSION
from controllers.api.kinds import POLICY_LABEL
from controllers.api.serving_settings import DeploymentMode, ServingRuntime, ServingSettings
from controllers.api.shadowmodel import KIND as SHADOW_MODEL_KIND
from controllers.api.shadowmodel import ShadowModelSpec
from controllers.api.training_settings import BaseModelRef

API = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
BASE_MOUNT = "/mnt/models/base"
ADAPTER_MOUNT = "/mnt/models/adapters"
OPENAI_PATH = "/openai/v1"  # KServe's prefix for the OpenAI-compatible routes of the huggingface server
GPU_RESOURCE = "nvidia.com/gpu"
SHADOW_MODEL_LABEL = "kaizen.dev/shadow-model"
SHARED_BASE_LABEL = "kaizen.dev/shared-base"
DIGESTS_ANNOTATION = "kaizen.dev/adapter-digests"
RUNTIME_LORA_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"
SHARED_STORAGE_FIELDS = {
    "service_account_name": "serviceAccountName", "secret_ref": "secretRef", "endpoint": "endpoint", "region": "region"
}  # fmt: skip
MAX_NAME = 45  # room for the "-predictor" suffixes KServe derives its Services and hostnames from
_VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class InvalidServingSpec(ValueError):
    """A ShadowModel that cannot be served as asked; ``field`` is the path to report in a condition."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class ObjectRef:
    """The identity of a ShadowModel: what names, labels and owner references are made from."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ObjectRef:
        return cls(name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"])


@dataclass(frozen=True)
class Endpoint:
    """Where to send OpenAI requests for one served model, and the ``model`` to put in them."""

    base_url: str
    model: str


def _digest(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def inference_service_name(shadow_model: str) -> str:
    """A DNS-1035 name of at most 45 characters; long or unusual names are cut and made unique by a
    digest of the full name."""
    name = shadow_model.lower().replace(".", "-")
    if not name[:1].isalpha():
        name = "sm-" + name
    if len(name) > MAX_NAME or not _DNS1035.match(name):
        stem = re.sub(r"[^-a-z0-9]", "-", name)[: MAX_NAME - 9].rstrip("-")
        name = f"{stem}-{_digest(shadow_model)}"
    return name


def served_model_name(shadow_model: str) -> str:
    """The ``model`` a client sends to reach this ShadowModel's adapter."""
    return shadow_model


def endpoint_url(inference_service_url: str) -> str:
    """The OpenAI base URL (``…/openai/v1``) of an InferenceService whose ``status.url`` is given."""
    return inference_service_url.rstrip("/") + OPENAI_PATH


def ready_endpoint(inference_service: Mapping[str, Any], model: str) -> Endpoint | None:
    """The endpoint of an InferenceService object read back from the API server, or None until its
    Ready condition is True and it has a URL.

    The in-cluster address (``status.address.url``, ``http://<name>-predictor.<namespace>.svc.cluster.local``
    in RawDeployment mode) comes first: the router runs in the cluster, and its allowlist of upstream
    hosts admits Service names only. ``status.url`` (the ingress host) is the fallback."""
    status = inference_service.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
    url = (status.get("address") or {}).get("url") or status.get("url")
    return Endpoint(endpoint_url(url), model) if ready and url else None


def _label_value(value: str) -> str:
    if len(value) <= 63 and _LABEL_VALUE.match(value):
        return value
    return f"{re.sub(r'[^-A-Za-z0-9_.]', '-', value)[:54].strip('-_.')}-{_digest(value)}"


def _owner(ref: ObjectRef, controller: bool) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": SHADOW_MODEL_KIND,
        "name": ref.name,
        "uid": ref.uid,
        "controller": controller,
        "blockOwnerDeletion": controller,
    }


def _lora_rank_flag(rank: int) -> str:
    supported = next((r for r in _VLLM_LORA_RANKS if r >= rank), None)
    if supported is None:
        raise InvalidServingSpec("lora.rank", f"vLLM serves LoRA ranks up to {_VLLM_LORA_RANKS[-1]}")
    return f"--max-lora-rank={supported}"


def _predictor(
    base: BaseModelRef,
    adapters: Mapping[str, str],
    serving: ServingSettings,
    lora_rank: int | None,
    service_account: str | None,
    *,
    runtime_lora: bool,
) -> dict[str, Any]:
    """The predictor of a deployment serving ``base`` with ``adapters`` (served name -> storage URI)
    fixed at start, or (``runtime_lora``) with adapters loaded and unloaded at run time."""
    if serving.runtime != ServingRuntime.VLLM:
        raise InvalidServingSpec(
            "spec.serving.runtime", "KServe serves LoRA adapters on its vLLM backend only; use vLLM"
        )
    if base.name in adapters:
        raise InvalidServingSpec(
            "metadata.name", f"an adapter may not share the base model's name {base.name!r}"
        )
    mounts = {name: f"{ADAPTER_MOUNT}/{inference_service_name(name)}" for name in sorted(adapters)}
    args = [
        f"--model_name={base.name}",
        f"--model_dir={BASE_MOUNT}",
        "--backend=vllm",
        "--enable-lora",
        f"--max-loras={serving.max_loras}",
        f"--max-cpu-loras={max(serving.max_loras, len(adapters))}",
    ]
    if lora_rank is not None:
        args.append(_lora_rank_flag(lora_rank))
    if mounts:
        args += ["--lora-modules", *(f"{name}={mounts[name]}" for name in mounts)]
    requests = {"cpu": serving.cpu, "memory": serving.memory}
    limits = {"memory": serving.memory}
    if serving.gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(serving.gpus)
    model: dict[str, Any] = {
        "modelFormat": {"name": "huggingface"},
        "args": args,
        "resources": {"requests": requests, "limits": limits},
    }
    if runtime_lora:
        model["env"] = [{"name": RUNTIME_LORA_ENV, "value": "True"}]
    predictor: dict[str, Any] = {
        "minReplicas": serving.min_replicas,
        "maxReplicas": serving.max_replicas,
        "storageUris": [
            {"uri": base.uri, "mountPath": BASE_MOUNT},
            *({"uri": adapters[name], "mountPath": mounts[name]} for name in mounts),
        ],
        "model": model,
    }
    if service_account:
        predictor["serviceAccountName"] = service_account
    return predictor


def _manifest(
    name: str,
    namespace: str,
    labels: dict[str, str],
    digests: Mapping[str, str],
    owners: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "kaizen-serving",
                "app.kubernetes.io/managed-by": "kaizen",
                **labels,
            },
            "annotations": {
                DIGESTS_ANNOTATION: json.dumps(dict(sorted(digests.items())), separators=(",", ":"))
            },
            "ownerReferences": owners,
        },
    }


def build_inference_service(
    shadow: ObjectRef, spec: ShadowModelSpec, *, lora_rank: int | None = None
) -> dict[str, Any]:
    """The dedicated InferenceService of a ShadowModel (mode Dedicated), owned by it.

    ``lora_rank`` (the TrainingRun's LoRA rank) raises vLLM's maximum rank when the adapter needs it."""
    if spec.serving.mode != DeploymentMode.DEDICATED:
        raise InvalidServingSpec("spec.serving.mode", "a Shared model is served by build_shared_base")
    adapter = served_model_name(shadow.name)
    labels = {SHADOW_MODEL_LABEL: _label_value(shadow.name)}
    if spec.policy_ref:
        labels[POLICY_LABEL] = _label_value(spec.policy_ref)
    manifest = _manifest(
        inference_service_name(shadow.name),
        shadow.namespace,
        labels,
        {adapter: spec.adapter.digest},
        [_owner(shadow, controller=True)],
    )
    manifest["spec"] = {
        "predictor": _predictor(
            spec.base_model,
            {adapter: spec.adapter.uri},
            spec.serving,
            lora_rank,
            spec.storage.service_account_name,
            runtime_lora=False,
        )
    }
    return manifest
