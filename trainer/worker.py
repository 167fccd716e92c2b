"""The function every Ray Train worker runs: restore, train with checkpoints, evaluate, hand back results.

Checkpoints are the Hugging Face Trainer's own (adapter, optimiser, scheduler, RNG and data position),
reported to Ray Train under ``checkpoint-<step>`` as they are written. Ray keeps them in the run's
storage and, because the run is named after the config hash, hands the newest one back to the next job
with the same config: the worker copies it in and the Trainer resumes mid-epoch, skipping the steps and
batches already done. Each rank reports its own part of a checkpoint (rank 0 the weights and optimiser,
the others their RNG state) and Ray merges them into one folder.

Ray Train's result carries only what was reported with a checkpoint, so the last report is a "final"
checkpoint from rank 0 holding the adapter and ``result.json`` with the held-out metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.train
import torch
from transformers import (
    PreTrainedTokenizerBase,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from trainer.config import Method, ResumePolicy, TrainerConfig
from trainer.data import preference_rows, read_snapshot
from trainer.outputs import RESULT_NAME

FINAL = "final"


def log(message: str) -> None:
    """One line in the job's log (Ray forwards worker stdout to the driver and the Jobs API)."""
    rank = ray.train.get_context().get_world_rank()
    print(f"{time.strftime('%H:%M:%S')} [kaizen-trainer rank={rank}] {message}", flush=True)


def configure_threads(cpus: int) -> None:
    """One intra-op thread per CPU the worker was given: Ray does not size torch's pool, and two
    workers on one machine each defaulting to every core would oversubscribe it."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(cpus)
    torch.set_num_threads(cpus)


class RayCheckpoints(TrainerCallback):
    """Report each checkpoint the Trainer writes to Ray Train, and count the steps this attempt ran."""

    def __init__(self) -> None:
        self.steps_run = 0

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.steps_run += 1

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        folder = Path(args.output_dir or ".") / f"checkpoint-{state.global_step}"
        has_files = folder.is_dir() and any(folder.iterdir())
        checkpoint = ray.train.Checkpoint.from_directory(str(folder)) if has_files else None
        loss = next((entry["loss"] for entry in reversed(state.log_history) if "loss" in entry), None)
        ray.train.report(
            {"step": state.global_step, "loss": loss},
            checkpoint=checkpoint,
            checkpoint_dir_name=f"checkpoint-{state.global_step:06d}",
        )


@dataclass(frozen=True)
class Restored:
    """What the newest checkpoint says: resume from ``folder`` at ``step``, or (``finished``) an
    earlier attempt already trained and evaluated, and only handing its result back was lost."""

    folder: Path
    step: int
    finished: dict[str, Any] | None = None


def restore(scratch: Path) -> Restored | None:
    """The run's newest checkpoint, copied into ``scratch`` (None when there is none)."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        source = Path(folder)
        if (source / RESULT_NAME).exists():
            result = json.loads((source / RESULT_NAME).read_text())
            target = shutil.copytree(source, scratch / FINAL, dirs_exist_ok=True)
            return Restored(folder=Path(target), step=int(result["steps"]), finished=result)
        # Rank 0's part of every checkpoint carries the Trainer's state; without it the checkpoint is corrupt.
        step = int(json.loads((source / "trainer_state.json").read_text())["global_step"])
        target = shutil.copytree(source, scratch / f"checkpoint-{step}", dirs_exist_ok=True)
        return Restored(folder=Path(target), step=step)


def train_loop(payload: dict[str, Any]) -> None:
    config = TrainerConfig.model_validate(payload["config"])
    rank = ray.train.get_context().get_world_rank()
    configure_threads(config.scaling.cpus_per_worker)
    scratch = Path(tempfile.mkdtemp(prefix=f"kaizen-{config.run_name}-rank{rank}-"))
    try:
        _train(config, rank, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train(config: TrainerConfig, rank: int, scratch: Path) -> None:
    # Imported here: the driver imports this module to hand train_loop to Ray, and needs none of TRL.
    from trainer.evaluate import evaluate
    from trainer.train import build_trainer

    snapshot = read_snapshot(config.dataset.uri, config.dataset.content_hash)
    restored = restore(scratch) if config.checkpointing.resume == ResumePolicy.AUTO else None
    if restored is not None and restored.finished is not None:
        log(f"an earlier attempt finished at step {restored.step}; handing its result back")
        _report_final(rank, restored.folder, restored.finished)
        return
    if restored is not None:
        log(f"resuming from checkpoint at step {restored.step}; the steps before it are skipped")
    else:
        log(f"starting {config.method.value} from step 0 on {len(snapshot.train)} training rows")
    callback = RayCheckpoints()
    trainer = build_trainer(config, snapshot, scratch, callbacks=[callback])
    if getattr(trainer.args, "precompute_ref_log_probs", False):
        log(f"reference log-probs precomputed for {len(trainer.train_dataset)} rows")  # type: ignore[arg-type]
    started = time.monotonic()
    output = trainer.train(resume_from_checkpoint=str(restored.folder) if restored else None)
    train_seconds = time.monotonic() - started
    log(f"trained to step {trainer.state.global_step} ({callback.steps_run} steps in this attempt)")
    tokens = torch.tensor([trainer.counter.tokens], dtype=torch.long)
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(tokens)  # every worker's tokens: the job's throughput, not rank 0's
    result: dict[str, Any] = {
        "steps": trainer.state.global_step,
        "train_loss": output.training_loss,
        "train_tokens": int(tokens.item()),
        "tokens_per_second": int(tokens.item()) / train_seconds if train_seconds else None,
        "train_seconds": train_seconds,
        "resumed_from_step": restored.step if restored else None,
        "steps_this_attempt": callback.steps_run,
        "precision": "bf16" if trainer.args.bf16 else "fp32",
        "dataset_hash": snapshot.content_hash,
        "train_rows": len(snapshot.train),
        "eval_rows": len(snapshot.eval),
    }
    final = scratch / FINAL
    if rank == 0:
        started = time.monotonic()
        model = trainer.accelerator.unwrap_model(trainer.model)
        tokenizer = trainer.processing_class
        assert isinstance(tokenizer, PreTrainedTokenizerBase)
        held_out = evaluate(model, tokenizer, preference_rows(snapshot.eval), config.hyperparameters.beta)
        result.update(held_out)
        result["eval_loss"] = held_out.get("dpo_loss" if config.method == Method.DPO else "chosen_nll")
        result["eval_seconds"] = time.monotonic() - started
        model.save_pretrained(str(final))
        (final / RESULT_NAME).write_text(json.dumps(result, indent=2))
        log(f"held-out: {json.dumps({k: held_out[k] for k in sorted(held_out)})}")
    _report_final(rank, final, result)


def _report_final(rank: int, folder: Path, result: dict[str, Any]) -> None:
    checkpoint = ray.train.Checkpoint.from_directory(str(folder)) if rank == 0 else None
    ray.train.report(
        {"final": True, "steps": result["steps"]}, checkpoint=checkpoint, checkpoint_dir_name=FINAL
    )
