"""The trainer's contract: what a run is asked to do (TrainerConfig) and what it reports (TrainerManifest).

This is the one trainer module the operator imports, so it depends on pydantic and the standard library
only — no torch, no Ray. The operator builds a TrainerConfig from a TrainingRun's frozen spec, hashes it
(the hash names the Ray Train run, so a resubmitted attempt of the same config resumes from its
checkpoints while a changed config never does), and later reads the TrainerManifest the job wrote next to
the adapter. Field names follow the API's settings blocks (controllers/api/training_settings.py) so a resolved
copy of them validates here unchanged; on the wire both are camelCase.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

MANIFEST_NAME = "manifest.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
RunName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]
Sha256 = Annotated[str, StringConstraints(pattern=r"^sha256:[a-f0-9]{64}$")]
# Local paths, fsspec URIs (file://, s3://, gs://, ...) and tiny://<preset> for the built-in test model.
URI = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\s]+$")]


class TrainerModel(BaseModel):
    """camelCase on the wire like the Kaizen API; unknown fields ignored so an older trainer image
    accepts a config written by a newer operator."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Method(StrEnum):
    DPO = "DPO"
    SFT = "SFT"


class ResumePolicy(StrEnum):
    AUTO = "Auto"  # continue from the newest checkpoint of the same config, if any
    NEVER = "Never"  # always start from step 0 (and overwrite old checkpoints)


class Precision(StrEnum):
    AUTO = "Auto"  # bf16 on GPUs and on CPUs with native bf16 (AVX512-BF16, AMX); fp32 elsewhere
    BF16 = "BF16"
    FP32 = "FP32"


class BaseModelSpec(TrainerModel):
    name: str = Field(min_length=1, max_length=256, description="Name the serving runtime knows it by.")
    uri: URI = Field(
        description="Local folder, fsspec URI, or tiny://<preset> (built locally, never downloaded)."
    )


class LoRA(TrainerModel):
    rank: int = Field(default=16, ge=1, le=256)
    alpha: int = Field(default=32, ge=1, le=1024)
    dropout: float = Field(default=0.05, ge=0.0, le=0.5)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


class Hyperparameters(TrainerModel):
    epochs: int = Field(default=1, ge=1, le=100)
    learning_rate: float = Field(default=5.0e-5, gt=0.0, le=1.0)
    beta: float = Field(default=0.1, gt=0.0, le=10.0)
    # Left out of the wire at 0 so that configs from before the field hash as they did: an upgraded
    # operator then finds a run's RayJob and submission under the same names, and never makes a second.
    sft_weight: float = Field(default=0.0, ge=0.0, le=10.0, exclude_if=lambda weight: weight == 0.0)
    batch_size: int = Field(default=4, ge=1, le=512, description="Per-worker batch size.")
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=512)
    max_length: int = Field(default=1024, ge=32, le=131072)
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many optimiser steps.")
    warmup_ratio: float = Field(default=0.0, ge=0.0, le=0.5)


class DatasetSpec(TrainerModel):
    uri: URI = Field(description="Snapshot folder: train.parquet + eval.parquet (or .jsonl).")
    content_hash: Sha256 | None = Field(default=None, description="Expected hash; a mismatch fails the run.")


class Scaling(TrainerModel):
    workers: int = Field(default=1, ge=1, le=64)
    gpus_per_worker: int = Field(default=0, ge=0, le=8)
    cpus_per_worker: int = Field(default=1, ge=1, le=128, description="Also the torch/OMP thread count.")
    precision: Precision = Precision.AUTO

    @property
    def use_gpu(self) -> bool:
        return self.gpus_per_worker > 0

    @property
    def bf16(self) -> bool:
        """bf16 whatever the machine: asked for, or Auto on GPUs. On CPUs Auto is settled where the job
        runs, by what the processor supports (trainer.train.mixed_bf16)."""
        return self.precision == Precision.BF16 or (self.precision == Precision.AUTO and self.use_gpu)


class Checkpointing(TrainerModel):
    resume: ResumePolicy = ResumePolicy.AUTO
    every_steps: int = Field(
        default=50, ge=1, le=1_000_000, description="Optimiser steps between checkpoints."
    )
    keep: int = Field(default=2, ge=1, le=100, description="Newest checkpoints kept in storage.")
    max_failures: int = Field(
        default=1,
        ge=0,
        le=10,
        description="Worker-group restarts inside one job, each from the newest checkpoint.",
    )


class Efficiency(TrainerModel):
    """Throughput choices that do not change what is learned (see bench/trainer_throughput.py)."""

    group_by_length: bool = Field(default=True, description="Batch similar lengths together: less padding.")
    gradient_checkpointing: bool = Field(
        default=False, description="Trade compute for memory (TRL's default)."
    )
    precompute_ref_log_probs: bool | None = Field(
        default=None,
        description="DPO: one reference pass before training instead of one per step; unset means "
        "whenever training passes over the data more than once (with several workers each computes "
        "its share and the shares are gathered on every rank).",
    )
    padding_free: bool = Field(
        default=False,
        description="SFT: flatten each batch into one unpadded sequence. A win with FlashAttention on GPUs; "
        "slower on CPU, where attention over the flattened batch is quadratic in its length.",
    )


class TrainerConfig(TrainerModel):
    """Everything one training run needs; the JSON given to ``python -m trainer --config``."""

    run_name: RunName = Field(
        description="The TrainingRun's name; with the config hash it names the Ray run."
    )
    method: Method = Method.DPO
    base_model: BaseModelSpec
    lora: LoRA = Field(default_factory=LoRA)
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    dataset: DatasetSpec
    output_uri: URI = Field(
        description="Folder for this run: adapter/ (adapter + manifest) and ray/ (checkpoints)."
    )
    scaling: Scaling = Field(default_factory=Scaling)
    checkpointing: Checkpointing = Field(default_factory=Checkpointing)
    efficiency: Efficiency = Field(default_factory=Efficiency)

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of every field: the same config always gives the same hash."""
        canonical = json.dumps(self.to_wire(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def ray_run_name(self) -> str:
        """Ray Train's RunConfig name: stable across attempts of this config, so attempts share checkpoints."""
        return f"{self.run_name}-{self.config_hash()[7:19]}"

    @property
    def adapter_uri(self) -> str:
        return join_uri(self.output_uri, "adapter")

    @property
    def storage_uri(self) -> str:
        return join_uri(self.output_uri, "ray")

    @property
    def manifest_uri(self) -> str:
        return join_uri(self.adapter_uri, MANIFEST_NAME)

    @classmethod
    def parse(cls, text: str) -> TrainerConfig:
        """A config from JSON text (the form the entrypoint carries)."""
        return cls.model_validate_json(text)


def join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(part.strip("/") for part in parts)])


class AdapterFile(TrainerModel):
    name: str
    sha256: Sha256
    size: int = Field(ge=0)


class AdapterRecord(TrainerModel):
    uri: str = Field(description="Folder holding the adapter files and this manifest.")
    digest: Sha256 = Field(
        description="sha256 of adapter_model.safetensors (the API's AdapterStatus.digest)."
    )
    files: tuple[AdapterFile, ...]


class DatasetRecord(TrainerModel):
    uri: str
    content_hash: Sha256 = Field(description="Hash the trainer computed over the rows it read.")
    train_rows: int = Field(ge=0)
    eval_rows: int = Field(ge=0)


class Metrics(TrainerModel):
    """Held-out metrics. A pair counts for preference accuracy when the trained model gives the chosen
    answer a higher log-probability than the rejected one; reward accuracy and margin use DPO's implicit
    reward beta * (log p_policy - log p_base), as TRL reports them."""

    train_loss: float | None = None
    eval_loss: float | None = None
    preference_accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    baseline_preference_accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    reward_accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    reward_margin: float | None = None
    chosen_logprob_gain: float | None = Field(
        default=None, description="Mean per-token gain on chosen answers."
    )
    eval_pairs: int = Field(default=0, ge=0)
    steps: int = Field(default=0, ge=0, description="Optimiser steps in total, across attempts.")
    train_tokens: int = Field(default=0, ge=0, description="Non-padding tokens trained on in this attempt.")
    tokens_per_second: float | None = None


class ResumeRecord(TrainerModel):
    resumed_from_step: int | None = Field(
        default=None, description="Checkpoint step this attempt started at."
    )
    steps_this_attempt: int = Field(default=0, ge=0)


class Timings(TrainerModel):
    started_at: datetime
    finished_at: datetime
    train_seconds: float = Field(ge=0.0)
    eval_seconds: float = Field(ge=0.0)
    total_seconds: float = Field(ge=0.0)


class TrainerManifest(TrainerModel):
    """Everything the operator records for lineage, written last: its presence means the run succeeded."""

    schema_version: int = 1
    run_name: str
    method: Method
    config_hash: Sha256
    base_model: BaseModelSpec
    dataset: DatasetRecord
    adapter: AdapterRecord
    metrics: Metrics
    resume: ResumeRecord
    timings: Timings
    scaling: Scaling
    device: str = Field(description="cpu or cuda")
    precision: str = Field(default="fp32", description="bf16 (autocast) or fp32, as trained")
    versions: dict[str, str] = Field(description="kaizen, trl, peft, transformers, torch, ray")
