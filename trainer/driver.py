"""The job's driver: run the workers under Ray Train, then publish the adapter and the manifest.

Runs wherever the job's entrypoint runs (the Ray head of a RayJob's cluster, or the cluster behind the
Jobs API). The Ray Train run is named after the config hash and stored under the run's output URI, so
a second job with the same config (the next attempt after a crash, a preemption or a deliberate stop)
finds the first one's checkpoints and continues. A job whose manifest already exists with the same
config hash returns it at once: resubmitting a finished run trains nothing.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from trainer.config import (
    AdapterRecord,
    DatasetRecord,
    Metrics,
    ResumeRecord,
    Timings,
    TrainerConfig,
    TrainerManifest,
)
from trainer.data import read_snapshot
from trainer.outputs import RESULT_NAME, publish_adapter, read_manifest, versions, write_manifest
from trainer.storage import explained, ray_storage
from trainer.worker import train_loop


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [kaizen-trainer driver] {message}", flush=True)


def torch_trainer(config: TrainerConfig) -> TorchTrainer:
    scaling = config.scaling
    storage_path, storage_filesystem = ray_storage(config.storage_uri)
    resources = {"CPU": float(scaling.cpus_per_worker)}
    if scaling.use_gpu:
        resources["GPU"] = float(scaling.gpus_per_worker)
    return TorchTrainer(
        train_loop,
        train_loop_config={"config": config.to_wire()},
        scaling_config=ScalingConfig(
            num_workers=scaling.workers, use_gpu=scaling.use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=config.ray_run_name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            checkpoint_config=CheckpointConfig(num_to_keep=config.checkpointing.keep),
            failure_config=FailureConfig(max_failures=config.checkpointing.max_failures),
        ),
    )


def build_manifest(
    config: TrainerConfig,
    outcome: dict[str, Any],
    adapter: AdapterRecord,
    started_at: datetime,
    started: float,
) -> TrainerManifest:
    """The manifest of a finished run, from the worker's result and the published adapter."""
    finished_at = datetime.now(UTC)
    return TrainerManifest(
        run_name=config.run_name,
        method=config.method,
        config_hash=config.config_hash(),
        base_model=config.base_model,
        dataset=DatasetRecord(
            uri=config.dataset.uri,
            content_hash=outcome["dataset_hash"],
            train_rows=outcome["train_rows"],
            eval_rows=outcome["eval_rows"],
        ),
        adapter=adapter,
        metrics=Metrics.model_validate(outcome),
        resume=ResumeRecord.model_validate(outcome),
        timings=Timings(
            started_at=started_at,
            finished_at=finished_at,
            train_seconds=outcome.get("train_seconds", 0.0),
            eval_seconds=outcome.get("eval_seconds", 0.0),
            total_seconds=time.monotonic() - started,
        ),
        scaling=config.scaling,
        device="cuda" if config.scaling.use_gpu else "cpu",
        precision=outcome.get("precision", "fp32"),
        versions=versions(),
    )


def run(config: TrainerConfig) -> TrainerManifest:
    """Train (or finish training) and return the manifest that was written."""
    started_at, started = datetime.now(UTC), time.monotonic()
    config_hash = config.config_hash()
    with explained("reading the manifest", config.manifest_uri):
        existing = read_manifest(config.manifest_uri)
    if existing is not None and existing.config_hash == config_hash:
        log(f"{config.manifest_uri} already records this config ({config_hash}); nothing to do")
        return existing
    with explained("reading the dataset", config.dataset.uri):  # fail fast, before any worker starts
        snapshot = read_snapshot(config.dataset.uri, config.dataset.content_hash)
    log(f"dataset {snapshot.content_hash}: {len(snapshot.train)} train / {len(snapshot.eval)} eval rows")
    log(f"run {config.ray_run_name}: {config.method.value} on {config.base_model.uri}, config {config_hash}")
    # Ray Train's print patch routes worker prints through logging, which defeats libraries that capture
    # stdout (dill disassembles functions into captured stdout while datasets fingerprints them).
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    # The controller polls its workers this often; the default 2s adds up to 2s at each end of a run.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    if not ray.is_initialized():
        ray.init(log_to_driver=True)
    with explained("training with checkpoints in", config.storage_uri):
        result = torch_trainer(config).fit()
    if result.checkpoint is None:
        raise RuntimeError("Ray Train finished without the final checkpoint")
    with (
        explained("publishing the adapter to", config.adapter_uri),
        result.checkpoint.as_directory() as folder,
    ):
        outcome = json.loads((Path(folder) / RESULT_NAME).read_text())
        adapter = publish_adapter(Path(folder), config.adapter_uri)
    manifest = build_manifest(config, outcome, adapter, started_at, started)
    with explained("writing the manifest", config.manifest_uri):
        write_manifest(manifest, config.manifest_uri)
    log(f"wrote {config.manifest_uri}: {json.dumps(manifest.metrics.to_wire())}")
    return manifest
