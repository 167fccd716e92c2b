"""The trainer's contract and the ids derived from it: pure, so checked without Ray or torch."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from controllers.api.training_settings import BaseModelRef, LoRASettings, TrainingSettings
from controllers.api.training_settings import Hyperparameters as ApiHyperparameters
from controllers.builders.ids import MAX_RAYJOB_NAME, rayjob_name, submission_id
from controllers.builders.jobspec import ATTEMPT_KEY, CONFIG_HASH_KEY, RUN_KEY, job_spec, trainer_config
from trainer.__main__ import EXIT_INVALID, load_config, main
from trainer.config import BaseModelSpec, DatasetSpec, Hyperparameters, LoRA, Method, Scaling, TrainerConfig

DNS1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def config(**changes: object) -> TrainerConfig:
    base = TrainerConfig(
        run_name="coder-dpo-7",
        base_model=BaseModelSpec(name="Qwen/Qwen2.5-Coder-7B-Instruct", uri="s3://models/qwen-coder-7b"),
        dataset=DatasetSpec(uri="s3://snapshots/abc", content_hash="sha256:" + "a" * 64),
        output_uri="s3://kaizen-adapters/coder-dpo-7",
    )
    return base.model_copy(update=changes)


def test_config_hash_is_stable_across_serialisation() -> None:
    original = config()
    wire = original.to_wire()
    shuffled = json.dumps(dict(reversed(list(wire.items()))))
    assert TrainerConfig.parse(shuffled).config_hash() == original.config_hash()
    assert TrainerConfig.model_validate(original.model_dump()).config_hash() == original.config_hash()
    assert original.config_hash().startswith("sha256:")
    assert len(original.config_hash()) == 71


@pytest.mark.parametrize(
    "change",
    [
        {"method": Method.SFT},
        {"lora": LoRA(rank=8)},
        {"hyperparameters": Hyperparameters(learning_rate=1e-4)},
        {"hyperparameters": Hyperparameters(seed=7)},
        {"hyperparameters": Hyperparameters(sft_weight=1.0)},
        {"dataset": DatasetSpec(uri="s3://snapshots/abc", content_hash="sha256:" + "b" * 64)},
        {"scaling": Scaling(workers=4)},
        {"run_name": "coder-dpo-8"},
    ],
)
def test_any_change_to_the_config_changes_its_hash_and_run_name(change: dict[str, object]) -> None:
    assert config(**change).config_hash() != config().config_hash()
    assert config(**change).ray_run_name != config().ray_run_name


def test_a_config_that_does_not_use_a_newer_field_hashes_as_it_did_before_it() -> None:
    # The hash names a run's Ray submission and RayJob. Had sftWeight changed it, an operator upgraded
    # while a run was in flight would submit that attempt a second time under a new name. This value
    # is config()'s hash before sftWeight existed (commit 7920ff2).
    assert config().config_hash() == "sha256:faea1bbccab15d9385e02aca4631d2be7cb6c2b4e12dc5a31336a7170819001c"
    assert "sftWeight" not in config().to_wire()["hyperparameters"]
    weighted = config(hyperparameters=Hyperparameters(sft_weight=0.5))
    assert weighted.to_wire()["hyperparameters"]["sftWeight"] == 0.5
    assert TrainerConfig.parse(json.dumps(weighted.to_wire())).hyperparameters.sft_weight == 0.5


def test_the_policy_sft_weight_reaches_the_trainer() -> None:
    training = TrainingSettings(
        base_model=BaseModelRef(name="m", uri="s3://models/m"),
        hyperparameters=ApiHyperparameters(sft_weight=1.0),
        output_uri="s3://bucket/out",
    )
    built = trainer_config("coder-dpo-7", training, dataset_uri="s3://snapshots/abc", dataset_hash=None)
    assert built.hyperparameters.sft_weight == 1.0


def test_camel_case_on_the_wire_and_unknown_fields_ignored() -> None:
    wire = config().to_wire()
    assert {"runName", "baseModel", "outputUri"} <= wire.keys()
    assert wire["hyperparameters"]["learningRate"] == 5e-5
    newer = {**wire, "fieldFromANewerOperator": 1}
    assert TrainerConfig.model_validate(newer).config_hash() == config().config_hash()


def test_api_training_settings_carry_over_field_for_field() -> None:
    assert set(LoRASettings.model_fields) <= set(LoRA.model_fields)
    assert set(ApiHyperparameters.model_fields) <= set(Hyperparameters.model_fields)
    settings = TrainingSettings(
        base_model=BaseModelRef(name="Qwen/Qwen2.5-Coder-7B-Instruct", uri="s3://models/qwen"),
        method="SFT",
        lora=LoRASettings(rank=32, alpha=64, dropout=0.1, target_modules=["q_proj", "v_proj"]),
        hyperparameters=ApiHyperparameters(
            epochs=3, learning_rate=2e-4, beta=0.2, batch_size=16, max_length=2048, seed=9
        ),
        output_uri="s3://bucket/adapters",
    )
    made = trainer_config("coder-sft-1", settings, dataset_uri="s3://snap/1", dataset_hash=None)
    assert made.method == Method.SFT
    assert made.lora.model_dump() == {
        "rank": 32,
        "alpha": 64,
        "dropout": 0.1,
        "target_modules": ("q_proj", "v_proj"),
    }
    for name, value in settings.hyperparameters.model_dump().items():
        assert getattr(made.hyperparameters, name) == value, name
    assert (made.scaling.workers, made.scaling.gpus_per_worker, made.scaling.cpus_per_worker) == (1, 1, 4)
    assert made.scaling.bf16, "GPU runs train in bf16"
    assert made.output_uri == "s3://bucket/adapters/coder-sft-1"
    assert made.adapter_uri == "s3://bucket/adapters/coder-sft-1/adapter"


def test_submission_ids_are_deterministic_and_distinct_per_attempt_and_config() -> None:
    digest = config().config_hash()
    assert submission_id("coder-dpo-7", 1, digest) == submission_id("coder-dpo-7", 1, digest)
    ids = {submission_id("coder-dpo-7", attempt, digest) for attempt in (1, 2, 3)}
    ids.add(submission_id("coder-dpo-7", 1, config(lora=LoRA(rank=8)).config_hash()))
    assert len(ids) == 4
    assert submission_id("coder-dpo-7", 2, digest) == f"kaizen-coder-dpo-7-a2-{digest[7:19]}"
    with pytest.raises(ValueError, match="from 1"):
        submission_id("coder-dpo-7", 0, digest)
    with pytest.raises(ValueError, match="sha256"):
        submission_id("coder-dpo-7", 1, "not-a-hash")


def test_rayjob_names_fit_kuberay_and_stay_distinct_when_cut() -> None:
    digest = config().config_hash()
    long_a, long_b = "a" * 50 + "-one", "a" * 50 + "-two"
    names = [
        rayjob_name(run, attempt, digest)
        for run in ("x", "9-starts-with-digit", long_a, long_b)
        for attempt in (1, 2)
    ]
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name) <= MAX_RAYJOB_NAME
        assert re.match(DNS1035, name), name
    assert rayjob_name(long_a, 1, digest) == rayjob_name(long_a, 1, digest)


def test_job_spec_carries_the_config_inline_and_labels_the_attempt() -> None:
    made = config()
    job = job_spec(made, 2, python="/opt/venv/bin/python", env={"EXTRA": "1"})
    argv = shlex.split(job.entrypoint)
    assert argv[:4] == ["/opt/venv/bin/python", "-m", "trainer", "--config"]
    assert TrainerConfig.parse(argv[4]).config_hash() == made.config_hash()
    assert job.submission_id == submission_id(made.run_name, 2, made.config_hash())
    assert job.metadata == {RUN_KEY: "coder-dpo-7", ATTEMPT_KEY: "2", CONFIG_HASH_KEY: made.config_hash()}
    env = job.runtime_env["env_vars"]
    assert isinstance(env, dict)
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["EXTRA"] == "1"
    body = job.request_body()
    assert body["submission_id"] == job.submission_id
    assert "entrypoint_num_cpus" not in body


def test_cli_reads_a_config_from_json_or_a_file_and_rejects_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = config()
    path = tmp_path / "config.json"
    path.write_text(made.model_dump_json(by_alias=True))
    assert load_config(str(path)).config_hash() == made.config_hash()
    assert load_config(made.model_dump_json(by_alias=True)).config_hash() == made.config_hash()
    assert main(["--config", '{"runName": "Not A DNS Label"}']) == EXIT_INVALID
    assert "invalid config" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.json")]) == EXIT_INVALID
