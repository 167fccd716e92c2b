"""Published upstream CRDs (KubeRay RayJob, KServe InferenceService) as validators: schema, CEL, pruning.

The CRD file is reference data kept beside the checkout (``../shared/upstream-crds/``, or the folder
named by ``KAIZEN_UPSTREAM_CRDS``). Without it the conformance tests fail rather than skip: a skipped
check would let a manifest the real API server rejects, or silently prunes, reach a cluster.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from controllers.api import cel

ROOT = Path(__file__).resolve().parents[2]
ENV = "KAIZEN_UPSTREAM_CRDS"


def crd_dir() -> Path:
    return Path(os.environ.get(ENV) or ROOT.parent / "shared" / "upstream-crds")


@cache
def rayjob_schema(version: str = "v1") -> dict[str, Any]:
    return upstream_schema("ray.io_rayjobs.yaml", version)


@cache
def inferenceservice_schema(version: str = "v1beta1") -> dict[str, Any]:
    return upstream_schema("serving.kserve.io_inferenceservices.yaml", version)


def upstream_schema(filename: str, version: str) -> dict[str, Any]:
    """The OpenAPI schema of ``version`` in the upstream CRD file ``filename``."""
    path = crd_dir() / filename
    if not path.exists():
        pytest.fail(f"the upstream CRD {path} is missing; put upstream-crds beside the checkout or set {ENV}")
    crd = yaml.safe_load(path.read_text())
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"{path} has no version {version}")


def schema_errors(schema: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """JSON-schema violations (OpenAPI v3 structural schemas are draft-4 style)."""
    validator = jsonschema.Draft4Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def pruned_fields(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Fields the API server would drop: keys not declared where the schema neither lists properties
    for them, nor allows additional properties, nor sets x-kubernetes-preserve-unknown-fields. The
    root ``metadata`` is ObjectMeta, which the server handles itself."""
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        for key, child in value.items():
            where = f"{path}.{key}" if path else key
            if path == "" and key == "metadata":
                continue
            if key in properties:
                found += pruned_fields(properties[key], child, where)
            elif isinstance(extra, dict):
                found += pruned_fields(extra, child, where)
            elif not (preserve or extra is True):
                found.append(where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += pruned_fields(schema["items"], item, f"{path}[{index}]")
    return found


def cel_violations(schema: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    return [f"{v.path}: {v.message}" for v in cel.validate(schema, manifest)]
