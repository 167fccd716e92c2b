"""How the InferenceService stand-in reads a manifest, and what it writes back: pure functions.

Reading: the predictor's ``storageUris`` (or ``model.storageUri``) say which URI lands at which path in
the container; ``--model_dir`` says where the base is, ``--model_name`` what it is called (KServe's
default is the InferenceService's name), and ``--lora-modules NAME=PATH`` (or vLLM's JSON form) where
each adapter is. Local paths, ``file://`` and ``tiny://`` (the project's built-in test models) stand
for weights in the image or on a volume; ``s3://`` URIs are fetched by the stand-in's storage
initializer (``storage_init``) with the credentials of ``predictor.serviceAccountName``.
``minReplicas`` replicas are started; the env ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` turns on vLLM's
runtime LoRA API (load/unload adapters without a restart).

Writing: KServe's status shape (``pkg/apis/serving/v1beta1/inference_service_status.go``) for a
RawDeployment: ``url``, ``address.url``, ``components.predictor.url``/``address.url``, the conditions
PredictorReady, IngressReady and Ready (Knative's condition shape: type, status, reason, message,
lastTransitionTime), ``modelStatus`` (transitionStatus, states, copies, lastFailureInfo),
``deploymentMode`` and ``observedGeneration``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from devstack.runtime.rayjob_status import timestamp

DEFAULT_MOUNT = "/mnt/models"


class Unservable(ValueError):
    """The manifest asks for something the stand-in cannot serve; ``reason`` is KServe's failure reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ServerPlan:
    """One model server: the base (local folder, tiny:// or s3:// URI), its served name, the adapters
    (name, local path or s3:// URI), the ServiceAccount whose credentials fetch them, whether adapters
    may be loaded at run time, and how many replicas."""

    base: str
    base_name: str
    adapters: tuple[tuple[str, str], ...]
    service_account: str | None = None
    runtime_lora: bool = False
    replicas: int = 1

    @property
    def digest(self) -> str:
        fields = [self.base, self.base_name, list(self.adapters), self.service_account, self.runtime_lora]
        text = json.dumps([*fields, self.replicas], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flag(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and index + 1 < len(args):
            return args[index + 1]
    return None


def _lora_modules(args: list[str]) -> list[tuple[str, str]]:
    values: list[str] = []
    for index, arg in enumerate(args):
        if arg.startswith("--lora-modules="):
            values.append(arg.split("=", 1)[1])
        elif arg == "--lora-modules":
            for value in args[index + 1 :]:
                if value.startswith("--"):
                    break
                values.append(value)
    modules = []
    for value in values:
        if value.lstrip().startswith("{"):
            entry = json.loads(value)
            modules.append((str(entry["name"]), str(entry["path"])))
        elif "=" in value:
            name, path = value.split("=", 1)
            modules.append((name, path))
        else:
            raise Unservable("InvalidPredictorSpec", f"--lora-modules {value!r}: expected NAME=PATH")
    return modules


def _local(uri: str) -> str:
    if uri.startswith(("tiny://", "/", "s3://")):
        return uri
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    raise Unservable(
        "ModelLoadFailed",
        f"the local runtime serves local paths, file://, tiny:// and s3:// URIs only, not {uri!r}",
    )


def _resolve(path: str, mounts: dict[str, str]) -> str:
    """The local location of a container path, through the storage URI mounted at or above it."""
    target = PurePosixPath(path)
    for mount in sorted(mounts, key=len, reverse=True):
        if target == PurePosixPath(mount) or PurePosixPath(mount) in target.parents:
            rest = target.relative_to(mount).as_posix()
            source = _local(mounts[mount])
            return source if rest == "." else f"{source.rstrip('/')}/{rest}"
    if path.startswith("/") and not path.startswith(DEFAULT_MOUNT):
        return path  # a path outside the model mounts: the stand-in reads it as it is
    raise Unservable("InvalidPredictorSpec", f"{path} is not under any storage URI's mount path")


def plan(isvc: dict[str, Any]) -> ServerPlan:
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model") or {}
    format_name = (model.get("modelFormat") or {}).get("name")
    if format_name != "huggingface":
        raise Unservable(
            "NoSupportingRuntime", f"modelFormat {format_name!r}: the local runtime serves huggingface"
        )
    mounts = {
        item.get("mountPath", DEFAULT_MOUNT): item["uri"] for item in predictor.get("storageUris") or []
    }
    if model.get("storageUri"):
        mounts[DEFAULT_MOUNT] = model["storageUri"]
    args = [str(arg) for arg in model.get("args") or []]
    base = _resolve(_flag(args, "--model_dir") or DEFAULT_MOUNT, mounts)
    base_name = _flag(args, "--model_name") or isvc["metadata"]["name"]
    adapters = tuple(sorted((name, _resolve(path, mounts)) for name, path in _lora_modules(args)))
    if len({name for name, _ in adapters} | {base_name}) != len(adapters) + 1:
        raise Unservable(
            "InvalidPredictorSpec", "LoRA module names must be unique and differ from --model_name"
        )
    env = {item.get("name"): item.get("value") for item in model.get("env") or []}
    return ServerPlan(
        base,
        base_name,
        adapters,
        service_account=predictor.get("serviceAccountName"),
        runtime_lora=str(env.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "")).lower() in ("true", "1"),
        replicas=max(1, int(predictor.get("minReplicas", 1))),
    )


def _condition(
    kind: str, ok: bool, reason: str, message: str, previous: dict[str, Any], now: datetime
) -> dict[str, Any]:
    status = "True" if ok else "False"
    since = previous.get("lastTransitionTime") if previous.get("status") == status else None
    condition = {"type": kind, "status": status, "lastTransitionTime": since or timestamp(now)}
    if not ok:
        condition.update(
            {"reason": reason, "message": message, "severity": "Error" if kind == "Ready" else "Info"}
        )
    return condition


def status(
    isvc: dict[str, Any],
    *,
    url: str | None,
    ready: bool,
    up_to_date: bool,
    reason: str = "",
    message: str = "",
    loading: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The status to write: ``ready`` when a server answers, ``up_to_date`` when the newest spec is the
    one answering (during a rolling replacement the previous server keeps the service Ready)."""
    now = now or datetime.now(UTC)
    before = {c["type"]: c for c in (isvc.get("status") or {}).get("conditions", [])}
    why = reason or ("Loading" if loading else "PredictorNotReady")
    conditions = [
        _condition(
            "IngressReady",
            url is not None,
            "NoAddress",
            "no server started yet",
            before.get("IngressReady", {}),
            now,
        ),
        _condition("PredictorReady", ready, why, message, before.get("PredictorReady", {}), now),
        _condition("Ready", ready and url is not None, why, message, before.get("Ready", {}), now),
    ]
    failed = bool(reason) and not loading
    state = "Loaded" if up_to_date and ready else ("FailedToLoad" if failed else "Loading")
    model_status: dict[str, Any] = {
        "transitionStatus": "UpToDate"
        if up_to_date and ready
        else ("BlockedByFailedLoad" if failed else "InProgress"),
        "states": {"activeModelState": "Loaded" if ready else state, "targetModelState": state},
        "copies": {"failedCopies": int(failed), "totalCopies": 1},
    }
    # A merge patch removes what is set to None: a recovered server drops its last failure.
    model_status["lastFailureInfo"] = (
        {"reason": reason, "message": message[-2000:], "time": timestamp(now)} if failed else None
    )
    result: dict[str, Any] = {
        "observedGeneration": isvc["metadata"].get("generation", 1),
        "deploymentMode": "RawDeployment",
        "conditions": conditions,
        "modelStatus": model_status,
        "url": url,
        "address": {"url": url} if url else None,
        "components": {"predictor": {"url": url, "address": {"url": url}}} if url else None,
    }
    return result
