"""End to end: the real trainer, submitted through the Jobs REST API to a real Ray head, trains real
LoRA adapters (TRL DPO and SFT, PEFT) with two Ray Train workers on CPU, and they work.

Each test reads as: given a snapshot of the synthetic task, when the job runs, then the manifest,
the adapter files and the adapter's effect on the base model say it learned.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from controllers.clients.ray_jobs import JobStatus, RayJobsClient
from devstack import synthetic
from tests.trainer.support import answer_logprob, run_job, task_snapshot, tiny_config
from trainer import tiny
from trainer.config import ADAPTER_WEIGHTS, MANIFEST_NAME, Method, TrainerManifest
from trainer.outputs import sha256_file


def _trained(
    tmp_path: Path, method: Method, jobs_api: Callable[[], RayJobsClient]
) -> tuple[TrainerManifest, str]:
    snapshot = task_snapshot(tmp_path / "snapshot", method)
    config = tiny_config(tmp_path, f"e2e-{method.value.lower()}", method, snapshot)

    async def scenario() -> str:
        async with jobs_api() as ray:
            info = await run_job(ray, config)
            logs = await ray.logs(info.submission_id)
            assert info.status == JobStatus.SUCCEEDED, f"{info.message}\n{logs[-4000:]}"
            assert "starting " + method.value + " from step 0" in logs
            return logs

    logs = asyncio.run(scenario())
    manifest = TrainerManifest.model_validate_json(Path(config.manifest_uri).read_text())
    assert manifest.config_hash == config.config_hash()
    assert manifest.dataset.content_hash == snapshot.content_hash
    assert (manifest.dataset.train_rows, manifest.dataset.eval_rows) == (256, 64)
    assert manifest.metrics.steps == config.hyperparameters.max_steps
    assert manifest.resume.resumed_from_step is None
    return manifest, logs


def _logprob_shifts(adapter_dir: Path, method: Method) -> list[tuple[float, float]]:
    """For each held-out pair: how much the adapter moved log p(chosen) and log p(rejected)."""
    base_dir = tiny.resolve("tiny://kaizen-tiny")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    before = [
        (
            answer_logprob(base, tokenizer, p.prompt, p.chosen),
            answer_logprob(base, tokenizer, p.prompt, p.rejected),
        )
        for p in synthetic.pairs(64, held_out=True, seed=0)
    ]
    tuned = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    after = [
        (
            answer_logprob(tuned, tokenizer, p.prompt, p.chosen),
            answer_logprob(tuned, tokenizer, p.prompt, p.rejected),
        )
        for p in synthetic.pairs(64, held_out=True, seed=0)
    ]
    return [(ca - cb, ra - rb) for (cb, rb), (ca, ra) in zip(before, after, strict=True)]


def _adapter_files_match(manifest: TrainerManifest) -> Path:
    folder = Path(manifest.adapter.uri)
    names = {f.name for f in manifest.adapter.files}
    assert {ADAPTER_WEIGHTS, "adapter_config.json"} <= names
    assert "result.json" not in names
    for item in manifest.adapter.files:
        assert sha256_file(folder / item.name) == item.sha256, item.name
    assert manifest.adapter.digest == sha256_file(folder / ADAPTER_WEIGHTS)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["r"] == 16
    assert config["peft_type"] == "LORA"
    assert (folder / MANIFEST_NAME).exists()
    return folder


def test_dpo_adapter_learns_the_preference_and_moves_log_probs_toward_chosen(
    tmp_path: Path, jobs_api: Callable[[], RayJobsClient]
) -> None:
    manifest, logs = _trained(tmp_path, Method.DPO, jobs_api)
    # Two workers see the data more than once: each rank computed its share of the reference log-probs.
    for rank in (0, 1):
        assert f"[kaizen-trainer rank={rank}] reference log-probs precomputed for 256 rows" in logs
    metrics = manifest.metrics
    print(f"DPO held-out metrics: {metrics.to_wire()}")
    assert metrics.preference_accuracy is not None
    assert metrics.baseline_preference_accuracy is not None
    assert metrics.preference_accuracy >= 0.75
    assert metrics.preference_accuracy >= metrics.baseline_preference_accuracy + 0.2
    assert metrics.reward_accuracy is not None
    assert metrics.reward_accuracy >= 0.75
    assert metrics.reward_margin is not None
    assert metrics.reward_margin > 0
    assert metrics.train_tokens > 0
    assert metrics.tokens_per_second

    folder = _adapter_files_match(manifest)
    shifts = _logprob_shifts(folder, Method.DPO)
    toward_chosen = sum(dc > dr for dc, dr in shifts) / len(shifts)
    assert toward_chosen >= 0.75, f"the adapter favours chosen on only {toward_chosen:.2f} of held-out pairs"
    assert sum(dc - dr for dc, dr in shifts) / len(shifts) > 0


def test_sft_adapter_raises_held_out_answers_and_prefers_the_right_language(
    tmp_path: Path, jobs_api: Callable[[], RayJobsClient]
) -> None:
    manifest, logs = _trained(tmp_path, Method.SFT, jobs_api)
    assert "reference log-probs" not in logs, "SFT has no reference model"
    metrics = manifest.metrics
    print(f"SFT held-out metrics: {metrics.to_wire()}")
    assert metrics.preference_accuracy is not None
    assert metrics.baseline_preference_accuracy is not None
    assert metrics.preference_accuracy >= 0.75
    assert metrics.preference_accuracy >= metrics.baseline_preference_accuracy + 0.2
    assert metrics.chosen_logprob_gain is not None
    assert metrics.chosen_logprob_gain > 1.0
    assert metrics.eval_loss is not None
    assert metrics.train_loss is not None

    folder = _adapter_files_match(manifest)
    shifts = _logprob_shifts(folder, Method.SFT)
    assert all(dc > 0 for dc, _ in shifts), (
        "SFT must raise the log-probability of every held-out chosen answer"
    )
