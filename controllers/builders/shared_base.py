"""The shared base InferenceService: one vLLM deployment per base model that serves every member
ShadowModel's adapter, loaded at run time by the loader beside it (``controllers.builders.loader_sidecar``),
so its spec depends on the members' shared settings only and a new adapter never rolls it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from controllers.api.kinds import POLICY_LABEL
from controllers.api.serving_settings import DeploymentMode, ServingSettings
from controllers.api.shadowmodel import ShadowModelSpec
from controllers.builders.inferenceservice import (
    SHARED_BASE_LABEL,
    SHARED_STORAGE_FIELDS,
    InvalidServingSpec,
    ObjectRef,
    _label_value,
    _manifest,
    _owner,
    _predictor,
    served_model_name,
)
from controllers.builders.loader_sidecar import LOADER_IMAGE, add_loader


def _agreed_serving(
    shared_base: str, members: Sequence[tuple[ObjectRef, ShadowModelSpec]]
) -> ServingSettings:
    """The members' common serving settings; they must agree on everything that sizes the deployment."""
    first = members[0][1].serving
    for field in ("runtime", "gpus", "cpu", "memory", "min_replicas", "max_replicas"):
        values = {ref.name: getattr(spec.serving, field) for ref, spec in members}
        if len(set(values.values())) > 1:
            camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), field)
            raise InvalidServingSpec(
                f"spec.serving.{camel}", f"the models on shared base {shared_base!r} disagree: {values}"
            )
    return first.model_copy(update={"max_loras": max(spec.serving.max_loras for _, spec in members)})


def _check_members(name: str, namespace: str, ordered: Sequence[tuple[ObjectRef, ShadowModelSpec]]) -> None:
    """Every member is on this base, in its namespace, on one base model, and names the same storage
    identity (one pod identity and adapter loader read every adapter)."""
    if not ordered:
        raise ValueError(f"shared base {name!r} has no ShadowModels; delete it instead")
    for ref, spec in ordered:
        if spec.serving.mode != DeploymentMode.SHARED or spec.serving.shared_base != name:
            raise InvalidServingSpec(
                "spec.serving.sharedBase", f"ShadowModel {ref.name!r} is not on shared base {name!r}"
            )
        if ref.namespace != namespace:
            raise InvalidServingSpec(
                "metadata.namespace", f"ShadowModel {ref.name!r} is not in namespace {namespace!r}"
            )
    bases = {(spec.base_model.name, spec.base_model.uri) for _, spec in ordered}
    if len(bases) > 1:
        raise InvalidServingSpec(
            "spec.baseModel", f"the models on shared base {name!r} have different bases: {sorted(bases)}"
        )
    for field, camel in SHARED_STORAGE_FIELDS.items():  # one pod identity and loader read every adapter
        values = {ref.name: getattr(spec.storage, field) for ref, spec in ordered}
        if len(set(values.values())) > 1:
            raise InvalidServingSpec(
                f"spec.storage.{camel}",
                f"the models on shared base {name!r} share one pod identity and adapter loader, but name {values}",
            )


def build_shared_base(
    name: str,
    namespace: str,
    members: Iterable[tuple[ObjectRef, ShadowModelSpec]],
    *,
    serving: ServingSettings | None = None,
    lora_rank: int | None = None,
    loader_image: str = LOADER_IMAGE,
) -> dict[str, Any]:
    """The shared base InferenceService ``name`` for its member ShadowModels (their adapters are
    loaded at run time; the spec depends on the members' shared settings only).

    Members must be in mode Shared on this base and share one base model. Sizing comes from
    ``serving`` when given, else from the members' settings (which must agree; max-loras is the
    largest asked for). Every member is a (non-controlling) owner. The predictor runs the adapter
    loader (``loader_image``) beside vLLM (``controllers.builders.loader_sidecar``)."""
    ordered = sorted(members, key=lambda member: member[0].name)
    _check_members(name, namespace, ordered)
    settings = serving or _agreed_serving(name, ordered)
    labels = {SHARED_BASE_LABEL: name}
    policies = {spec.policy_ref for _, spec in ordered}
    if len(policies) == 1 and (policy := policies.pop()):
        labels[POLICY_LABEL] = _label_value(policy)
    manifest = _manifest(
        name,
        namespace,
        labels,
        {served_model_name(ref.name): spec.adapter.digest for ref, spec in ordered},
        [_owner(ref, controller=False) for ref, _ in ordered],
    )
    predictor = _predictor(
        ordered[0][1].base_model,
        {},
        settings,
        lora_rank,
        ordered[0][1].storage.service_account_name,
        runtime_lora=True,
    )
    manifest["spec"] = {"predictor": add_loader(predictor, loader_image, ordered[0][1].storage, name)}
    return manifest
