"""From a TrainingRun's frozen settings to what a Ray job needs: the TrainerConfig and a JobSpec.

Pure functions. The JobSpec is the part both submission paths share — the entrypoint command, the
runtime environment, the job metadata and the deterministic submission id — so a run behaves the same
whether KubeRay submits it into a fresh cluster or the operator posts it to an existing one.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from controllers.api.training_settings import TrainingSettings
from controllers.builders.ids import submission_id
from trainer.config import (
    BaseModelSpec,
    DatasetSpec,
    Hyperparameters,
    LoRA,
    Method,
    Scaling,
    TrainerConfig,
    join_uri,
)

# Labels and job metadata keys the operator uses to find a run's jobs again.
RUN_KEY = "kaizen.dev/training-run"
ATTEMPT_KEY = "kaizen.dev/attempt"
CONFIG_HASH_KEY = "kaizen.dev/config-hash"


def trainer_config(
    run_name: str,
    training: TrainingSettings,
    *,
    dataset_uri: str,
    dataset_hash: str | None,
    output_uri: str | None = None,
) -> TrainerConfig:
    """The TrainerConfig for a run: the API's LoRA and hyperparameter blocks carry over field for field;
    the output folder is ``<training.outputUri>/<run name>`` unless given."""
    scaling = training.scaling
    return TrainerConfig(
        run_name=run_name,
        method=Method(training.method.value),
        base_model=BaseModelSpec(name=training.base_model.name, uri=training.base_model.uri),
        lora=LoRA.model_validate(training.lora.model_dump()),
        hyperparameters=Hyperparameters.model_validate(training.hyperparameters.model_dump()),
        dataset=DatasetSpec(uri=dataset_uri, content_hash=dataset_hash),
        output_uri=output_uri or join_uri(training.output_uri, run_name),
        scaling=Scaling(
            workers=scaling.workers,
            gpus_per_worker=scaling.gpus_per_worker,
            cpus_per_worker=scaling.cpus_per_worker,
        ),
    )


@dataclass(frozen=True)
class JobSpec:
    """One attempt of one run as a Ray job."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, object] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    def request_body(self) -> dict[str, object]:
        """The body of ``POST /api/jobs/``. The driver reserves no CPU: the workers hold the resources."""
        return {
            "entrypoint": self.entrypoint,
            "submission_id": self.submission_id,
            "runtime_env": self.runtime_env,
            "metadata": self.metadata,
        }


def thread_env(config: TrainerConfig) -> dict[str, str]:
    """Thread pools sized to each worker's CPUs (the workers also call torch.set_num_threads)."""
    threads = str(config.scaling.cpus_per_worker)
    return {
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TOKENIZERS_PARALLELISM": "false",
    }


def job_spec(
    config: TrainerConfig,
    attempt: int,
    *,
    python: str = "python",
    env: dict[str, str] | None = None,
    py_modules: list[str] | None = None,
) -> JobSpec:
    """The JobSpec of ``attempt`` (counting from 1). The config travels inline as JSON in the
    entrypoint, so the job needs no shared file; ``py_modules`` can ship code to a cluster whose
    image lacks it (over REST these must be URIs)."""
    config_hash = config.config_hash()
    entrypoint = (
        f"{shlex.quote(python)} -m trainer --config {shlex.quote(config.model_dump_json(by_alias=True))}"
    )
    runtime_env: dict[str, object] = {"env_vars": {**thread_env(config), **(env or {})}}
    if py_modules:
        runtime_env["py_modules"] = list(py_modules)
    return JobSpec(
        submission_id=submission_id(config.run_name, attempt, config_hash),
        entrypoint=entrypoint,
        runtime_env=runtime_env,
        metadata={RUN_KEY: config.run_name, ATTEMPT_KEY: str(attempt), CONFIG_HASH_KEY: config_hash},
    )
