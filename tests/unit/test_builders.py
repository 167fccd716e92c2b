"""The children the reconcilers create, and the lineage they write, pinned field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controllers.api import kinds
from controllers.api.learningpolicy import LearningPolicy, LineageEntry
from controllers.api.serving_settings import RolloutSettings, ServingSettings
from controllers.api.trainingrun import AdapterStatus, TrainingRun, TriggerReason
from controllers.builders.children import Parent, challenger_experiment, shadow_model, training_run
from controllers.builders.lineage import LINEAGE_MAX, champion_patch, crowned, restored

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64
POLICY = Parent(kinds.API_VERSION, "LearningPolicy", "coder", "team", "uid-policy")
RUN = Parent(kinds.API_VERSION, "TrainingRun", "coder-0003", "team", "uid-run")
BASE_MODEL = {"name": "qwen", "uri": "hf://Qwen/Qwen2.5-0.5B"}
MANAGED = {"app.kubernetes.io/managed-by": "kaizen"}


def owner(parent: Parent) -> dict[str, Any]:
    return {
        "apiVersion": kinds.API_VERSION,
        "kind": parent.kind,
        "name": parent.name,
        "uid": parent.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def policy() -> LearningPolicy:
    return LearningPolicy.model_validate(
        {"spec": {"track": {"agent": "coder"}, "training": {"baseModel": BASE_MODEL}, "serving": {"gpus": 2}}}
    )


def test_parent_is_read_from_the_object_and_owns_like_kinds_owner() -> None:
    body = {
        "apiVersion": kinds.API_VERSION,
        "kind": "LearningPolicy",
        "metadata": {"name": "coder", "namespace": "team", "uid": "uid-policy"},
    }
    assert Parent.of(body) == POLICY
    assert POLICY.owner_reference() == kinds.owner(body) == owner(POLICY)


def test_a_policy_run_is_a_frozen_copy_of_its_settings() -> None:
    spec = policy().spec
    wire = training_run(POLICY, spec, 3, TriggerReason.THRESHOLD, None).to_wire()
    assert wire == {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {
            "name": "coder-0003",
            "namespace": "team",
            "labels": {"kaizen.dev/policy": "coder", **MANAGED},
            "annotations": {},
            "ownerReferences": [owner(POLICY)],
        },
        "spec": {
            "policyRef": "coder",
            "trigger": "Threshold",
            "training": spec.training.to_wire(),
            "data": spec.data.to_wire(),
            "gate": spec.gate.to_wire(),
            "retry": {"maxAttempts": 3, "backoff": "30s"},  # the CRD's default, spelled out
        },
    }
    assert TrainingRun.model_validate(wire).spec.training == spec.training


def test_a_run_a_person_asked_for_carries_the_request_token() -> None:
    manual = training_run(POLICY, policy().spec, 12, TriggerReason.MANUAL, "please").to_wire()
    assert manual["metadata"]["name"] == "coder-0012"
    assert manual["metadata"]["annotations"] == {"kaizen.dev/trigger-token": "please"}
    assert manual["spec"]["trigger"] == "Manual"
    # a threshold run started while a token is set does not claim it
    other = training_run(POLICY, policy().spec, 13, TriggerReason.THRESHOLD, "please").to_wire()
    assert other["metadata"]["annotations"] == {}


def run_of(policy_ref: str | None) -> TrainingRun:
    spec: dict[str, Any] = {"training": {"baseModel": BASE_MODEL}}
    if policy_ref:
        spec["policyRef"] = policy_ref
    return TrainingRun.model_validate({"spec": spec})


def test_a_shadow_model_is_owned_by_the_policy_and_served_as_it_says() -> None:
    adapter = AdapterStatus(uri="s3://adapters/coder-0003", digest=DIGEST)
    serving = policy().spec.serving
    wire = shadow_model(RUN, run_of("coder").spec, adapter, POLICY, serving).to_wire()
    assert wire == {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "ShadowModel",
        "metadata": {
            "name": "coder-0003",
            "namespace": "team",
            "labels": {**MANAGED, "kaizen.dev/policy": "coder"},
            "ownerReferences": [owner(POLICY)],
        },
        "spec": {
            "policyRef": "coder",
            "trainingRunRef": "coder-0003",
            "baseModel": run_of("coder").spec.training.base_model.to_wire(),
            "adapter": {"uri": "s3://adapters/coder-0003", "digest": DIGEST},
            "serving": serving.to_wire(),
            "storage": {},
        },
    }
    assert wire["spec"]["serving"]["gpus"] == 2


def test_a_hand_made_run_owns_its_shadow_model_served_by_default() -> None:
    adapter = AdapterStatus(uri="s3://adapters/coder-0003", digest=DIGEST)
    wire = shadow_model(RUN, run_of(None).spec, adapter, None, ServingSettings()).to_wire()
    assert wire["metadata"]["labels"] == MANAGED
    assert wire["metadata"]["ownerReferences"] == [owner(RUN)]
    assert "policyRef" not in wire["spec"]
    assert wire["spec"]["serving"] == ServingSettings().to_wire()


def test_a_challenger_is_tested_against_the_champion() -> None:
    rollout = RolloutSettings(steps=[10, 50])
    wire = challenger_experiment(
        "coder-0003", POLICY, rollout, "coder-0002", "qwen", "http://x:8080/v1"
    ).to_wire()
    assert wire == {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {
            "name": "coder-0003",
            "namespace": "team",
            "labels": {"kaizen.dev/policy": "coder", **MANAGED},
            "ownerReferences": [owner(POLICY)],
        },
        "spec": {
            "policyRef": "coder",
            "strategy": "ABTest",
            "variants": [
                {"name": "champion", "role": "Champion", "shadowModel": "coder-0002", "costPerRequest": 0.0},
                {
                    "name": "challenger",
                    "role": "Challenger",
                    "shadowModel": "coder-0003",
                    "costPerRequest": 0.0,
                },
            ],
            "rollout": rollout.to_wire(),
            "bandit": {"explorationFloor": 0.05, "maxCostPerRequest": 0.0},
            "paused": False,
        },
    }


def test_a_first_challenger_is_tested_against_the_base_model_it_serves() -> None:
    wire = challenger_experiment(
        "coder-0001", POLICY, RolloutSettings(), None, "qwen", "http://x:8080/v1"
    ).to_wire()
    assert wire["spec"]["variants"][0] == {
        "name": "champion", "role": "Champion", "endpoint": "http://x:8080/v1", "model": "qwen", "costPerRequest": 0.0,
    }  # fmt: skip


def entry(name: str, retired: bool = False) -> LineageEntry:
    return LineageEntry(
        shadow_model=name,
        training_run=name,
        promoted_at=datetime(2026, 5, 1, tzinfo=UTC),
        retired_at=datetime(2026, 5, 2, tzinfo=UTC) if retired else None,
        reason="replaced by someone" if retired else "",
    )


def test_crowning_retires_the_reigning_champion_and_puts_the_new_one_first() -> None:
    lineage = crowned(
        [entry("coder-0002"), entry("coder-0001", retired=True)], "coder-0003", "coder-0003", NOW
    )
    assert [e.shadow_model for e in lineage] == ["coder-0003", "coder-0002", "coder-0001"]
    assert lineage[1].retired_at == NOW
    assert lineage[1].reason == "replaced by coder-0003"
    assert lineage[2] == entry("coder-0001", retired=True)  # an earlier retirement stays as it was
    patch = champion_patch("coder-0003", lineage, NOW)
    assert patch["champion"] == {"shadowModel": "coder-0003", "since": "2026-06-01T08:00:00Z"}
    assert patch["lineage"][0] == {
        "shadowModel": "coder-0003", "trainingRun": "coder-0003", "promotedAt": "2026-06-01T08:00:00Z",
    }  # fmt: skip


def test_the_lineage_is_bounded() -> None:
    many = [entry(f"m-{i}", retired=True) for i in range(LINEAGE_MAX)]
    assert len(crowned(many, "new", "", NOW)) == LINEAGE_MAX


def test_a_drift_rollback_gives_the_crown_back_as_a_new_reign() -> None:
    lineage = restored(
        [entry("coder-0003"), entry("coder-0002", retired=True)], "coder-0003", "coder-0002", "", "worse", NOW
    )
    assert [e.shadow_model for e in lineage] == ["coder-0002", "coder-0003", "coder-0002"]
    assert lineage[1].reason == "rolled back for drift after promotion: worse"
    patch = champion_patch("coder-0002", lineage, NOW)
    assert patch["lineage"][0] == {"shadowModel": "coder-0002", "promotedAt": "2026-06-01T08:00:00Z"}  # no ""
    # back to the plain base model: no champion, no new entry
    to_base = restored([entry("coder-0001")], "coder-0001", None, "", "worse", NOW)
    assert [e.shadow_model for e in to_base] == ["coder-0001"]
    assert champion_patch(None, to_base, NOW)["champion"] is None
