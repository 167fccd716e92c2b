"""Shared pieces of the trainer tests: a tiny-model config, job helpers, an independent log-prob check."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import fsspec
import torch
import torch.nn.functional as F
from fsspec import AbstractFileSystem

from controllers.builders.jobspec import job_spec
from controllers.clients.ray_jobs import JobInfo, RayJobsClient
from devstack import synthetic
from devstack.objectstore import ObjectStore
from trainer.config import (
    BaseModelSpec,
    Checkpointing,
    DatasetSpec,
    Hyperparameters,
    LoRA,
    Method,
    Scaling,
    TrainerConfig,
)
from trainer.data import Snapshot

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Settings under which the tiny model learns the synthetic task; SFT needs more steps than DPO
# because it must learn whole answers, not only which of two answers is better.
STEPS = {Method.DPO: 150, Method.SFT: 400}
LEARNING_RATE = {Method.DPO: 5e-3, Method.SFT: 1e-2}


def task_snapshot(folder: Path, method: Method) -> Snapshot:
    return synthetic.write(folder, method, train=256, eval=64, seed=0)


def tiny_config(
    root: Path, run_name: str, method: Method, snapshot: Snapshot, *, workers: int = 2, **overrides: Any
) -> TrainerConfig:
    config = TrainerConfig(
        run_name=run_name,
        method=method,
        base_model=BaseModelSpec(name="kaizen-tiny", uri="tiny://kaizen-tiny"),
        lora=LoRA(rank=16, alpha=32, dropout=0.0, target_modules=ALL_LINEAR),
        hyperparameters=Hyperparameters(
            learning_rate=LEARNING_RATE[method],
            batch_size=8 // workers,
            max_steps=STEPS[method],
            max_length=128,
            warmup_ratio=0.1,
        ),
        dataset=DatasetSpec(uri=str(snapshot.uri), content_hash=snapshot.content_hash),
        output_uri=str(root / "runs" / run_name),
        scaling=Scaling(workers=workers, cpus_per_worker=1),
        checkpointing=Checkpointing(every_steps=50),
    )
    return config.model_copy(update=overrides) if overrides else config


async def run_job(
    ray: RayJobsClient, config: TrainerConfig, attempt: int = 1, timeout: float = 300
) -> JobInfo:
    """Submit one attempt of ``config`` and wait for it to finish."""
    job = job_spec(config, attempt, python=sys.executable)
    await ray.submit(job)
    return await ray.wait(job.submission_id, timeout=timeout)


@torch.no_grad()
def answer_logprob(model: Any, tokenizer: Any, prompt: str, answer: str) -> float:
    """log p(answer + eos | prompt), summed over the answer's tokens — written here, independently of
    trainer.evaluate, so the test does not grade the trainer with the trainer's own code."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = tokenizer(prompt + answer + tokenizer.eos_token)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids, "the prompt must tokenize to a prefix"
    logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    logp = F.log_softmax(logits, dim=-1).gather(1, torch.tensor(ids[1:])[:, None]).squeeze(1)
    return float(logp[len(prompt_ids) - 1 :].sum())


def store_fs(store: ObjectStore) -> AbstractFileSystem:
    """The test's own client of the store, with the user's key given explicitly (this process's
    environment stays free of storage credentials, like the Ray head's)."""
    env = store.env()
    return fsspec.filesystem(
        "s3",
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": store.endpoint, "region_name": env["AWS_DEFAULT_REGION"]},
        skip_instance_cache=True,
    )


def upload_snapshot(store: ObjectStore, snapshot: Snapshot, uri: str) -> str:
    """Copy a local snapshot folder to ``uri`` and remove the local copy: jobs can only read the store."""
    local = Path(snapshot.uri)
    fs = store_fs(store)
    for path in sorted(local.iterdir()):
        fs.put_file(str(path), f"{uri.removeprefix('s3://')}/{path.name}")
    shutil.rmtree(local)
    return uri
