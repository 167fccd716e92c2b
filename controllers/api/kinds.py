"""The API resources Kaizen reads and writes (its own four kinds and KubeRay's and KServe's), and the labels
and annotations that tie a track's objects together.

Kaizen's own resources are read from each kind's KindInfo (controllers.api.kindinfo), so the
reconcilers' ``kinds.RUNS`` and the generated CRDs can never disagree about a plural.
"""

from __future__ import annotations

from typing import Any

from controllers.api import experiment, learningpolicy, shadowmodel, trainingrun
from controllers.api.common import API_VERSION as API_VERSION
from controllers.api.common import GROUP as GROUP
from controllers.api.kindinfo import Resource

POLICIES = learningpolicy.INFO.resource
RUNS = trainingrun.INFO.resource
SHADOW_MODELS = shadowmodel.INFO.resource
EXPERIMENTS = experiment.INFO.resource
RAYJOBS = Resource("ray.io", "v1", "rayjobs")
INFERENCE_SERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices")
# Read by name only: the judge's API key and the storage credentials a policy names.
SECRETS = Resource("", "v1", "secrets")
# What the gateway asks the API server about a ServiceAccount caller: who it is, and what it may do.
TOKEN_REVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews")
SUBJECT_ACCESS_REVIEWS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews")

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
