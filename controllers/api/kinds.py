"""The API resources Kaizen reads and writes (its own four kinds and KubeRay's and KServe's), and the labels
and annotations that tie a track's objects together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controllers.api.common import API_VERSION as API_VERSION
from controllers.api.common import GROUP as GROUP
from controllers.api.common import VERSION


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path; ``namespace`` None lists across all namespaces."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        path = f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path


POLICIES = Resource(GROUP, VERSION, "learningpolicies")
RUNS = Resource(GROUP, VERSION, "trainingruns")
SHADOW_MODELS = Resource(GROUP, VERSION, "shadowmodels")
EXPERIMENTS = Resource(GROUP, VERSION, "experiments")
RAYJOBS = Resource("ray.io", "v1", "rayjobs")
INFERENCE_SERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices")

POLICY_LABEL = "kaizen.dev/policy"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kaizen"}
# Annotations the operator owns (besides Kopf's progress records under the same prefix).
TRAIN_NOW = "kaizen.dev/train-now"  # set by a person: any new value starts one run
TRIGGER_TOKEN = "kaizen.dev/trigger-token"  # on a run: the train-now value that started it
FROZEN_SPEC = "kaizen.dev/frozen-spec"  # on a run: hash of the spec it was created with


def owner(body: dict[str, Any], *, controller: bool = True) -> dict[str, Any]:
    """An owner reference to ``body``; the garbage collector deletes the child with its owner."""
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }
