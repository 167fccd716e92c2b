"""The Kaizen objects that Kaizen objects make: a policy's TrainingRun, a run's ShadowModel and a
challenger's Experiment. Pure functions of the parent's identity and typed spec that return the typed
child with its metadata, so a reconciler only applies what it is given and a unit test can pin every
field of what goes to the API server.

Names are deterministic (``<policy>-<NNNN>`` for runs, the run's name for its ShadowModel, the
challenger's name for its Experiment): a reconcile repeated after a crash builds the same object, and
the API server's AlreadyExists tells it that the child is there. Specs go out in the models' own wire
form, defaults spelled out; they are the defaults of the CRDs, which are generated from the same
models, so the stored object is the one the API server would have defaulted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from controllers.api import experiment, kinds, shadowmodel, trainingrun
from controllers.api.common import KaizenModel
from controllers.api.experiment import Experiment, ExperimentSpec, Strategy, Variant, VariantRole
from controllers.api.learningpolicy import LearningPolicySpec
from controllers.api.serving_settings import RolloutSettings, ServingSettings
from controllers.api.shadowmodel import AdapterRef, ShadowModel, ShadowModelSpec
from controllers.api.trainingrun import (
    AdapterStatus,
    TrainingRun,
    TrainingRunSpec,
    TriggerReason,
)

ObjectT = TypeVar("ObjectT", bound=KaizenModel)


@dataclass(frozen=True)
class Parent:
    """The identity of the object a child belongs to: its namespace, and what its owner reference
    (the garbage collector deletes the child with its owner) is made from."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Parent:
        meta = body["metadata"]
        return cls(body["apiVersion"], body["kind"], meta["name"], meta["namespace"], meta["uid"])

    def owner_reference(self) -> dict[str, Any]:
        body = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": self.name, "uid": self.uid},
        }
        return kinds.owner(body)


@dataclass(frozen=True)
class Child(Generic[ObjectT]):
    """A Kaizen object to create: its metadata, and the typed object (its spec) it carries."""

    kind: str
    name: str
    namespace: str
    labels: dict[str, str]
    owner: Parent
    object: ObjectT
    annotations: dict[str, str] | None = None  # None: the metadata has no annotations at all

    def to_wire(self) -> dict[str, Any]:
        """The body to POST."""
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace, "labels": self.labels}
        if self.annotations is not None:
            metadata["annotations"] = self.annotations
        metadata["ownerReferences"] = [self.owner.owner_reference()]
        return {
            "apiVersion": kinds.API_VERSION,
            "kind": self.kind,
            "metadata": metadata,
            **self.object.to_wire(),
        }


def track_labels(policy: str) -> dict[str, str]:
    """The labels of every object a policy's track makes."""
    return {kinds.POLICY_LABEL: policy, **kinds.MANAGED_BY}


def run_name(policy: str, number: int) -> str:
    """The policy's run with this number, e.g. ``coder-0007``."""
    return f"{policy}-{number:04d}"


def training_run(
    policy: Parent, spec: LearningPolicySpec, number: int, trigger: TriggerReason, train_now: str | None
) -> Child[TrainingRun]:
    """The policy's next run: a frozen copy of its training, data and gate settings. A run a person
    asked for (``train_now``) carries that request's token, so the same request never starts two."""
    token = {kinds.TRIGGER_TOKEN: train_now} if trigger == TriggerReason.MANUAL and train_now else {}
    run_spec = TrainingRunSpec(
        policy_ref=policy.name, trigger=trigger, training=spec.training, data=spec.data, gate=spec.gate
    )
    return Child(
        kind=trainingrun.KIND,
        name=run_name(policy.name, number),
        namespace=policy.namespace,
        labels=track_labels(policy.name),
        owner=policy,
        object=TrainingRun(spec=run_spec),
        annotations=token,
    )


def shadow_model(
    run: Parent,
    spec: TrainingRunSpec,
    adapter: AdapterStatus,
    policy: Parent | None,
    serving: ServingSettings,
) -> Child[ShadowModel]:
    """The ShadowModel that serves a run's adapter, named after the run. Owned by the run's policy
    when it still exists (the model outlives the run's cleanup), else by the run; ``serving`` comes
    from the policy (defaults for a run made by hand)."""
    labels = dict(kinds.MANAGED_BY)
    if spec.policy_ref:
        labels[kinds.POLICY_LABEL] = spec.policy_ref
    model_spec = ShadowModelSpec(
        policy_ref=spec.policy_ref,
        training_run_ref=run.name,
        base_model=spec.training.base_model,
        adapter=AdapterRef(uri=adapter.uri, digest=adapter.digest),
        serving=serving,
        storage=spec.training.storage,
    )
    return Child(
        kind=shadowmodel.KIND,
        name=run.name,
        namespace=run.namespace,
        labels=labels,
        owner=policy or run,
        object=ShadowModel(spec=model_spec),
    )


def challenger_experiment(
    challenger: str,
    policy: Parent,
    rollout: RolloutSettings,
    champion: str | None,
    base_model: str,
    endpoint: str,
) -> Child[Experiment]:
    """The A/B test of a new ShadowModel ``challenger`` against the policy's ``champion``; a track's
    first model (no champion) is compared with the plain ``base_model`` served at its own ``endpoint``."""
    against = (
        Variant(name="champion", role=VariantRole.CHAMPION, shadow_model=champion)
        if champion
        else Variant(name="champion", role=VariantRole.CHAMPION, endpoint=endpoint, model=base_model)
    )
    spec = ExperimentSpec(
        policy_ref=policy.name,
        strategy=Strategy.AB_TEST,
        variants=[against, Variant(name="challenger", role=VariantRole.CHALLENGER, shadow_model=challenger)],
        rollout=rollout,
    )
    return Child(
        kind=experiment.KIND,
        name=challenger,
        namespace=policy.namespace,
        labels=track_labels(policy.name),
        owner=policy,
        object=Experiment(spec=spec),
    )
