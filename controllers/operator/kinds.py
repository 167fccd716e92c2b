"""The resources the operator reads and writes, and the labels that tie a track's objects together."""

from __future__ import annotations

from typing import Any

from controllers.operator.kube import Resource

GROUP = "kaizen.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

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
