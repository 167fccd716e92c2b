"""Object storage as the operator reaches it: a real API server holding the Secret, a real S3-protocol
server with authentication on (devstack.objectstore), the real store.

A policy whose Secret is missing or wrong says so on its Ready condition, naming the field, and
recovers when the Secret is fixed; a run's snapshot lands in the bucket under
``<outputUri>/<run>/dataset/``; an outage during the export leaves the run waiting, not failed, and
the export completes once the store answers again.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.trainingrun import TrainingRun
from controllers.reconcile import runs
from controllers.store import ingest
from controllers.store.db import transaction
from devstack.controlplane import ControlPlane
from devstack.objectstore import REGION, ObjectStore
from devstack.upstream_crds import RAYJOB, minimal_crd
from tests.envtest.test_policy_mining import close, condition, operator_for

SECRET = "kaizen-storage"
BASE_MODEL = {"name": "tiny", "uri": "file:///models/tiny"}


def _training(store: ObjectStore, output_uri: str) -> dict[str, Any]:
    storage = {
        "endpoint": store.endpoint,
        "region": REGION,
        "secretRef": SECRET,
        "serviceAccountName": SECRET,
    }
    return {"method": "DPO", "baseModel": BASE_MODEL, "outputUri": output_uri, "storage": storage}


def _apply(plane: ControlPlane, namespace: str, body: dict[str, Any]) -> None:
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))


def _get(plane: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(plane.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout))


def _secret(namespace: str, data: dict[str, str]) -> dict[str, Any]:
    meta = {"name": SECRET, "namespace": namespace}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "stringData": data}


def _bucket_fs(store: ObjectStore) -> Any:
    env = store.env()
    return fsspec.filesystem(
        "s3",
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": store.endpoint, "region_name": REGION},
        skip_instance_cache=True,
    )


def test_a_policy_says_when_it_cannot_write_its_output_and_recovers_when_the_secret_is_fixed(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
    object_store: ObjectStore,
    bucket: str,
) -> None:
    # Given a policy whose storage names a Secret that does not exist yet
    policy = {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "LearningPolicy",
        "metadata": {"name": "coder"},
        "spec": {"track": {"agent": "coder"}, "training": _training(object_store, f"{bucket}/coder")},
    }
    _apply(control_plane, namespace, policy)
    wrong = {**object_store.secret_data(), "AWS_SECRET_ACCESS_KEY": "not-the-key"}

    async def passes() -> list[dict[str, Any]]:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            missing = await operator.reconcile("coder")
            # When the Secret is created with a wrong key ...
            _apply(control_plane, namespace, _secret(namespace, wrong))
            refused = await operator.reconcile("coder")
            # ... and then fixed
            _apply(control_plane, namespace, _secret(namespace, object_store.secret_data()))
            fixed = await operator.reconcile("coder")
            return [missing, refused, fixed, {"events": operator.events}]
        finally:
            await close(operator)

    missing, refused, fixed, seen = asyncio.run(passes())
    # Then a missing Secret is named, with the field to fix
    ready = condition(missing, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "StorageUnavailable")
    assert ready["message"].startswith("spec.training.storage.secretRef: no Secret 'kaizen-storage'")
    # and a refused key names the field, the Secret and what to do, never the key itself
    ready = condition(refused, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "StorageUnavailable")
    assert ready["message"].startswith("spec.training.storage.secretRef: the store refused the credentials")
    assert "put a key with read and write access" in ready["message"]
    assert "not-the-key" not in ready["message"]
    # and once fixed the policy is back to normal, and the probe left nothing behind
    ready = condition(fixed, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Watching")
    assert _bucket_fs(object_store).find(bucket.removeprefix("s3://")) == []
    assert [e[1] for e in seen["events"] if e[0] == "Warning"] == ["StorageUnavailable", "StorageUnavailable"]


def _pairs(factory: sessionmaker[Session], namespace: str, count: int) -> None:
    rows = [
        {
            "prompt": f"task {i}",
            "chosen": "good",
            "rejected": "bad",
            "agent": "coder",
            "source": "explicit",
            "created_at": datetime.now(UTC),
        }
        for i in range(count)
    ]
    with transaction(factory) as session:
        ingest.insert_pairs(session, rows, namespace)


def _install_rayjobs(plane: ControlPlane, folder: Path) -> None:
    crd = folder / "rayjobs.json"
    crd.write_text(json.dumps(minimal_crd(RAYJOB)))
    plane.install_crds([crd])


def _given_a_run(
    plane: ControlPlane, namespace: str, factory: sessionmaker[Session], store: ObjectStore, output: str
) -> None:
    _pairs(factory, namespace, 12)
    for obj in store.kube_objects(namespace, SECRET):
        _apply(plane, namespace, obj)
    run = {"apiVersion": "kaizen.dev/v1alpha1", "kind": "TrainingRun", "metadata": {"name": "coder-0001"}}
    _apply(plane, namespace, {**run, "spec": {"training": _training(store, output)}})


def test_a_runs_snapshot_lands_in_the_bucket_and_its_job_gets_the_storage_settings(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
    object_store: ObjectStore,
    bucket: str,
) -> None:
    _install_rayjobs(control_plane, tmp_path)
    _given_a_run(control_plane, namespace, factory, object_store, f"{bucket}/coder")

    async def passes() -> list[Any]:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path / "scratch")
        try:
            body = _get(control_plane, namespace, "trainingrun", "coder-0001")
            first = await runs.reconcile(body, TrainingRun.model_validate(body), operator.deps)
            # exporting the same run again writes the same objects with the same content
            flt = runs.snapshot_filter(TrainingRun.model_validate(body), None, datetime.now(UTC), namespace)
            options = {
                "key": object_store.secret_data()["AWS_ACCESS_KEY_ID"],
                "secret": object_store.secret_data()["AWS_SECRET_ACCESS_KEY"],
                "client_kwargs": {"endpoint_url": object_store.endpoint, "region_name": REGION},
            }
            run = TrainingRun.model_validate(body)
            again = runs.export_snapshot(run, namespace, "coder-0001", operator.deps, flt, options)
            return [first, again]
        finally:
            await close(operator)

    first, again = asyncio.run(passes())
    dataset = first.status.dataset
    assert dataset is not None
    prefix = f"{bucket}/coder/coder-0001/dataset"
    assert dataset.uri == prefix
    assert dataset.train_rows + dataset.eval_rows == 12
    fs = _bucket_fs(object_store)
    names = sorted(path.rsplit("/", 1)[1] for path in fs.find(prefix.removeprefix("s3://")))
    assert {"snapshot.json", "train.parquet", "train.jsonl"} <= set(names)
    manifest = json.loads(fs.cat_file(f"{prefix.removeprefix('s3://')}/snapshot.json"))
    assert manifest["content_hash"] == dataset.content_hash
    assert manifest["uri"] == prefix  # the record names where the files are, not the scratch folder
    assert (again.uri, again.content_hash) == (dataset.uri, dataset.content_hash)
    assert sorted(path.rsplit("/", 1)[1] for path in fs.find(prefix.removeprefix("s3://"))) == names
    assert list((tmp_path / "scratch" / "scratch").iterdir()) == []  # the local copy is gone
    # and the attempt's pods reach the same storage: the Secret as environment, endpoint and region
    rayjob = _get(control_plane, namespace, "rayjobs", first.status.job_name)
    for group in [
        rayjob["spec"]["rayClusterSpec"]["headGroupSpec"],
        *rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"],
    ]:
        pod = group["template"]["spec"]
        assert pod["serviceAccountName"] == SECRET
        assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": SECRET}}]
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        assert env == {"AWS_ENDPOINT_URL": object_store.endpoint, "AWS_DEFAULT_REGION": REGION}
    assert object_store.secret_data()["AWS_SECRET_ACCESS_KEY"] not in json.dumps(rayjob)


def test_an_outage_during_the_export_leaves_the_run_waiting_and_the_export_completes_after(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
    object_store: ObjectStore,
    bucket: str,
) -> None:
    _install_rayjobs(control_plane, tmp_path)
    _given_a_run(control_plane, namespace, factory, object_store, f"{bucket}/coder")

    async def passes() -> list[Any]:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            body = _get(control_plane, namespace, "trainingrun", "coder-0001")
            # When the store goes away while the run exports its snapshot
            with object_store.outage(3):
                during = await runs.reconcile(body, TrainingRun.model_validate(body), operator.deps)
                body["status"] = during.status.to_wire()
                repeated = await runs.reconcile(body, TrainingRun.model_validate(body), operator.deps)
            body["status"] = repeated.status.to_wire()
            after = await runs.reconcile(body, TrainingRun.model_validate(body), operator.deps)
            return [during, repeated, after]
        finally:
            await close(operator)

    during, repeated, after = asyncio.run(passes())
    # Then the run is waiting, not failed: Ready Unknown saying the store is unreachable, no dataset
    status = during.status.to_wire()
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "StorageUnreachable")
    assert "unreachable" in ready["message"]
    assert "the operator tries again" in ready["message"]
    assert "dataset" not in status
    assert "completionTime" not in status
    assert [e[1] for e in during.events] == ["StorageUnreachable"]
    assert repeated.events == []  # one Event, not one per reconcile
    # and once the store answers, the export completes where it was to go and the run goes on
    dataset = after.status.dataset
    assert dataset is not None
    assert dataset.uri == f"{bucket}/coder/coder-0001/dataset"
    assert after.status.attempts == 1
    assert [e[1] for e in after.events] == ["Snapshotted", "Submitted"]
    assert _bucket_fs(object_store).exists(
        f"{bucket.removeprefix('s3://')}/coder/coder-0001/dataset/snapshot.json"
    )
