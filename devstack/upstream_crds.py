"""The RayJob and InferenceService CRDs for the local control plane, from upstream when it is at hand.

With KubeRay's and KServe's published CRDs beside the checkout (``../shared/upstream-crds``, or the
folder named by ``KAIZEN_UPSTREAM_CRDS``), those are installed — made loadable on an old API server
by three edits that change no accepted object: CEL rules dropped (servers before 1.25 do not know
them), ``default: ""`` and null defaults dropped, and list-map keys that lost their default made
required. Without that folder (``kaizen up`` on a user's machine) a minimal structural CRD of each
kind is generated here instead: the same group, version, names, status subresource and printer
columns, with spec and status kept as given. The project never carries a copy of the upstream files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV = "KAIZEN_UPSTREAM_CRDS"
DIGEST_ANNOTATION = "kaizen.dev/source-digest"
_EDITS = 1  # bump when for_old_servers changes, so installed CRDs are replaced
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: seconds faster on these files


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    file: str
    short_names: tuple[str, ...] = ()
    columns: tuple[tuple[str, str, str], ...] = ()  # (name, type, JSONPath)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


RAYJOB = Kind(
    group="ray.io",
    version="v1",
    kind="RayJob",
    plural="rayjobs",
    file="ray.io_rayjobs.yaml",
    columns=(
        ("job status", "string", ".status.jobStatus"),
        ("deployment status", "string", ".status.jobDeploymentStatus"),
        ("ray cluster name", "string", ".status.rayClusterName"),
        ("start time", "string", ".status.startTime"),
        ("end time", "string", ".status.endTime"),
        ("age", "date", ".metadata.creationTimestamp"),
    ),
)
INFERENCE_SERVICE = Kind(
    group="serving.kserve.io",
    version="v1beta1",
    kind="InferenceService",
    plural="inferenceservices",
    file="serving.kserve.io_inferenceservices.yaml",
    short_names=("isvc",),
    columns=(
        ("URL", "string", ".status.url"),
        ("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ),
)
KINDS = (RAYJOB, INFERENCE_SERVICE)


def upstream_dir() -> Path:
    return Path(os.environ.get(ENV) or ROOT.parent / "shared" / "upstream-crds")


def for_old_servers(crd: dict[str, Any], *, keep_cel: bool = False) -> dict[str, Any]:
    """A copy of ``crd`` that a v1.20 API server accepts."""

    def edit(node: Any) -> Any:
        if isinstance(node, list):
            return [edit(item) for item in node]
        if not isinstance(node, dict):
            return node
        result = {
            key: edit(value)
            for key, value in node.items()
            if not (key == "x-kubernetes-validations" and not keep_cel)
            and not (key == "default" and value in ("", None))
        }
        items = result.get("items")
        if result.get("x-kubernetes-list-type") == "map" and isinstance(items, dict):
            properties = items.get("properties", {})
            missing = [
                key
                for key in result.get("x-kubernetes-list-map-keys", [])
                if "default" not in properties.get(key, {}) and key not in items.get("required", [])
            ]
            if missing:
                items["required"] = [*items.get("required", []), *missing]
        return result

    edited: dict[str, Any] = edit(copy.deepcopy(crd))
    return edited


def minimal_crd(kind: Kind) -> dict[str, Any]:
    """A structural CRD that stores any spec and status of ``kind`` and serves its status subresource."""
    preserved = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "kaizen-local-runtime"}},
        "spec": {
            "group": kind.group,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                **({"shortNames": list(kind.short_names)} if kind.short_names else {}),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": kind.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": name, "type": type_, "jsonPath": path} for name, type_, path in kind.columns
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": preserved, "status": preserved},
                        }
                    },
                }
            ],
        },
    }


@dataclass(frozen=True)
class Source:
    """Where one CRD comes from, with a digest of it, so that an installer can tell an installed CRD is
    already this one without parsing megabytes of YAML."""

    kind: Kind
    path: Path | None  # None: the generated minimal CRD
    keep_cel: bool

    @property
    def digest(self) -> str:
        content = self.path.read_bytes() if self.path else json.dumps(minimal_crd(self.kind)).encode()
        return hashlib.sha256(content + f"|v{_EDITS}|cel={self.keep_cel}".encode()).hexdigest()[:16]

    def crd(self) -> dict[str, Any]:
        if self.path is None:
            crd = minimal_crd(self.kind)
        else:
            crd = for_old_servers(yaml.load(self.path.read_bytes(), Loader=_LOADER), keep_cel=self.keep_cel)
        crd["metadata"].setdefault("annotations", {})[DIGEST_ANNOTATION] = self.digest
        return crd


def sources(folder: Path | None = None, *, keep_cel: bool = False) -> list[Source]:
    """The CRDs to install: upstream (edited) where the file is in ``folder``, generated otherwise."""
    folder = folder or upstream_dir()
    return [
        Source(kind, folder / kind.file if (folder / kind.file).exists() else None, keep_cel)
        for kind in KINDS
    ]


def local_crds(folder: Path | None = None, *, keep_cel: bool = False) -> list[dict[str, Any]]:
    return [source.crd() for source in sources(folder, keep_cel=keep_cel)]
