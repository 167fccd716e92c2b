"""The trainer's storage against a real S3-protocol server with authentication on, reached only through
the environment a trainer pod has (AWS_* variables): snapshots, manifests and adapters round-trip,
a refused key and an unreachable store are errors that say so (never "no manifest"), and an outage
fails within bounds instead of hanging."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devstack.objectstore import ObjectStore
from tests.trainer.support import store_fs, task_snapshot, upload_snapshot
from trainer.config import (
    AdapterRecord,
    BaseModelSpec,
    DatasetRecord,
    Method,
    Metrics,
    ResumeRecord,
    Scaling,
    Timings,
    TrainerManifest,
)
from trainer.data import SnapshotError, read_snapshot
from trainer.outputs import publish_adapter, read_manifest, sha256_file, write_manifest
from trainer.storage import StorageError, explained, filesystem, ray_storage


def manifest_for(adapter: AdapterRecord) -> TrainerManifest:
    now = datetime.now(UTC)
    return TrainerManifest(
        run_name="run-b",
        method=Method.DPO,
        config_hash="sha256:" + "1" * 64,
        base_model=BaseModelSpec(name="kaizen-tiny", uri="tiny://kaizen-tiny"),
        dataset=DatasetRecord(
            uri="s3://b/run-b/dataset", content_hash="sha256:" + "2" * 64, train_rows=1, eval_rows=1
        ),
        adapter=adapter,
        metrics=Metrics(steps=1),
        resume=ResumeRecord(),
        timings=Timings(started_at=now, finished_at=now, train_seconds=0, eval_seconds=0, total_seconds=0),
        scaling=Scaling(),
        device="cpu",
        versions={},
    )


@pytest.fixture
def store_env(object_store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    """This process sees the store exactly as a trainer pod does: through the environment only."""
    for name, value in object_store.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    return object_store


def test_a_snapshot_in_the_bucket_reads_with_its_content_hash(
    store_env: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    snapshot = task_snapshot(tmp_path / "snapshot", Method.DPO)
    uri = upload_snapshot(store_env, snapshot, f"{bucket}/run-a/dataset")
    read = read_snapshot(uri, snapshot.content_hash)
    assert (read.train, read.eval, read.content_hash) == (
        snapshot.train,
        snapshot.eval,
        snapshot.content_hash,
    )
    with pytest.raises(SnapshotError, match="hashes to"):
        read_snapshot(uri, "sha256:" + "0" * 64)


def test_adapter_and_manifest_round_trip_and_the_manifest_is_one_object(
    store_env: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"weights" * 1000)
    (adapter / "adapter_config.json").write_text('{"r": 16}')
    (adapter / "result.json").write_text("{}")  # the worker's metrics: never published
    uri = f"{bucket}/run-b/adapter"
    assert read_manifest(f"{uri}/manifest.json") is None
    record = publish_adapter(adapter, uri)
    assert record.digest == sha256_file(adapter / "adapter_model.safetensors")
    manifest = manifest_for(record)
    write_manifest(manifest, f"{uri}/manifest.json")

    fs = store_fs(store_env)
    listed = sorted(path.rsplit("/", 1)[1] for path in fs.ls(uri.removeprefix("s3://"), detail=False))
    assert listed == ["adapter_config.json", "adapter_model.safetensors", "manifest.json"]
    weights = fs.cat(f"{uri.removeprefix('s3://')}/adapter_model.safetensors")
    assert "sha256:" + hashlib.sha256(weights).hexdigest() == record.digest
    assert read_manifest(f"{uri}/manifest.json") == manifest


def test_a_wrong_key_is_a_storage_error_naming_403_not_a_missing_manifest(
    store_env: ObjectStore, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    uri = f"{bucket}/run-c/adapter/manifest.json"
    with pytest.raises(StorageError) as refused, explained("reading the manifest", uri):
        read_manifest(uri)
    message = str(refused.value)
    assert uri in message
    assert "403 Forbidden" in message
    assert "AWS_SECRET_ACCESS_KEY" in message


def test_an_outage_fails_within_bounds_and_says_the_store_is_unreachable(
    store_env: ObjectStore, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    uri = f"{bucket}/run-d/adapter/manifest.json"
    with store_env.outage(0):
        started = time.monotonic()
        with pytest.raises(StorageError) as unreachable, explained("reading the manifest", uri):
            read_manifest(uri)
        elapsed = time.monotonic() - started
    assert "could not be reached" in str(unreachable.value)
    assert store_env.env()["AWS_ENDPOINT_URL"] in str(unreachable.value)
    assert elapsed < 30, f"an unreachable store took {elapsed:.0f}s to fail"


def test_ray_gets_the_same_filesystem_for_s3_and_a_plain_path_for_local(
    store_env: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    path, fs = ray_storage(f"{bucket}/run-e/ray")
    assert path == f"{bucket.removeprefix('s3://')}/run-e/ray"
    with fs.open_output_stream(f"{path}/probe") as stream:  # what Ray Train does with its checkpoints
        stream.write(b"x")
    assert filesystem(f"{bucket}/run-e/ray/probe")[0].cat_file(f"{path}/probe") == b"x"
    assert ray_storage(f"file://{tmp_path}") == (str(tmp_path), None)
    assert ray_storage(str(tmp_path)) == (str(tmp_path), None)
