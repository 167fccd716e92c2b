"""One process's training: the TRL trainer (DPO or SFT) with a PEFT LoRA adapter, built from a TrainerConfig.

Both the Ray Train worker (trainer.worker) and the plain-process baseline of bench/trainer_overhead.py
call ``build_trainer``, so "the same work" really is the same code. With a LoRA adapter TRL uses the
frozen base (adapter disabled) as the DPO reference model: no second copy of the weights. The
efficiency choices (length-grouped batches, no activation checkpointing, bf16 where the processor has
it, reference log-probs precomputed when the data is seen twice, optional padding-free SFT) are
TrainerConfig fields, and TRL's own defaults can be put back, so a benchmark can measure each.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from datasets import Dataset
from peft import LoraConfig, TaskType
from torch.utils.data import DataLoader, Sampler
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler
from trl.trainer.dpo_config import DPOConfig
from trl.trainer.dpo_trainer import DPOTrainer
from trl.trainer.sft_config import SFTConfig
from trl.trainer.sft_trainer import SFTTrainer

from trainer import tiny
from trainer.config import Method, Precision, TrainerConfig
from trainer.data import Snapshot, completion_rows, preference_rows
from trainer.storage import filesystem, is_local


def resolve_base_model(uri: str) -> Path:
    """A local folder with the base model: tiny:// is built here, local paths are used as they are, and
    other URIs (s3://, gs://, ...) are copied once into the cache."""
    if tiny.is_tiny(uri):
        return tiny.resolve(uri)
    fs, path = filesystem(uri)
    if is_local(uri):
        return Path(path)
    target: Path = tiny.cache_dir().parent / "models" / str(path).strip("/").replace("/", "--")
    if not (target / "config.json").exists():
        fs.get(path.rstrip("/") + "/", str(target), recursive=True)
    return target


def quiet() -> None:
    """No progress bars in job logs: they are per-item noise that buries the lines people read."""
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # TRL's reference precompute reads this, not the HF switches


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matrix multiplies in hardware, faster than fp32 (measured by
    bench/trainer_throughput.py); without them bf16 is emulated and slower."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def mixed_bf16(config: TrainerConfig) -> bool:
    """Whether to train under bf16 autocast: asked for, Auto on GPUs, or Auto on a CPU with native bf16."""
    if config.scaling.bf16:
        return True
    return config.scaling.precision == Precision.AUTO and cpu_has_native_bf16()


def load_base(config: TrainerConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Tokenizer and model. On GPUs the frozen base is held in bf16 (half the memory of a 7B model);
    on CPUs it stays fp32 and bf16 autocast, when chosen, runs the matrix multiplies."""
    folder = resolve_base_model(config.base_model.uri)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if config.scaling.bf16 and config.scaling.use_gpu else torch.float32
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return model, tokenizer


def lora_config(config: TrainerConfig) -> LoraConfig:
    return LoraConfig(
        r=config.lora.rank,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=list(config.lora.target_modules),
        task_type=TaskType.CAUSAL_LM,
    )


def training_arguments(config: TrainerConfig, output_dir: Path) -> dict[str, Any]:
    """Arguments shared by DPOConfig and SFTConfig. Checkpoints land in ``output_dir/checkpoint-<step>``."""
    h, e = config.hyperparameters, config.efficiency
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": h.batch_size,
        "per_device_eval_batch_size": h.batch_size,
        "gradient_accumulation_steps": h.gradient_accumulation_steps,
        "learning_rate": h.learning_rate,
        "num_train_epochs": h.epochs,
        "max_steps": h.max_steps or -1,
        "warmup_steps": h.warmup_ratio,
        "seed": h.seed,
        "data_seed": h.seed,
        "max_length": h.max_length,
        "bf16": mixed_bf16(config),
        "fp16": False,
        "use_cpu": not config.scaling.use_gpu,
        "activation_checkpointing": e.gradient_checkpointing,
        "train_sampling_strategy": "group_by_length" if e.group_by_length else "random",
        "save_strategy": "steps",
        "save_steps": config.checkpointing.every_steps,
        "save_total_limit": 1,
        "logging_steps": 5,
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "ddp_find_unused_parameters": False,
    }


def passes_over_data(config: TrainerConfig, rows: int) -> float:
    """How many times training will see each row: the epochs, or what max_steps amounts to."""
    h = config.hyperparameters
    if h.max_steps is None:
        return float(h.epochs)
    per_step = h.batch_size * h.gradient_accumulation_steps * config.scaling.workers
    return h.max_steps * per_step / max(rows, 1)


def dpo_loss(config: TrainerConfig) -> dict[str, Any]:
    """TRL's loss terms: plain DPO, or DPO plus an SFT term on the chosen answer (``sftWeight``)."""
    weight = config.hyperparameters.sft_weight
    return {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, weight]} if weight else {}


def precompute_reference(config: TrainerConfig, rows: int) -> bool:
    """Precompute the reference log-probs once when the data is seen more than once: every later pass
    then skips the reference forward (bench/trainer_throughput.py measures it). With several workers
    each computes its share (KaizenDPOTrainer._precompute_ref_logps)."""
    chosen = config.efficiency.precompute_ref_log_probs
    if chosen is not None:
        return chosen
    return passes_over_data(config, rows) > 1.0


class TokenCounter:
    """Counts the non-padding tokens each training step consumes (the honest unit of throughput)."""

    def __init__(self) -> None:
        self.tokens = 0

    def add(self, inputs: dict[str, Any]) -> None:
        mask = inputs.get("attention_mask")
        ids = inputs.get("input_ids")
        if isinstance(mask, torch.Tensor):
            self.tokens += int(mask.sum().item())
        elif isinstance(ids, torch.Tensor):  # padding-free batches carry no mask: every token is real
            self.tokens += ids.numel()


class CountsTokens(transformers.Trainer):
    """Counts the tokens of every training batch (for the throughput in the run's metrics). Listed
    before TRL's trainer in a subclass's bases, so TRL's own step runs inside this one."""

    counter: TokenCounter

    def training_step(
        self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        self.counter.add(inputs)
        loss: torch.Tensor = super().training_step(model, inputs, num_items_in_batch)
        return loss


class KaizenDPOTrainer(CountsTokens, DPOTrainer):
    """DPOTrainer that counts tokens and groups batches by pair length (TRL leaves that to the base
    Trainer, which cannot infer lengths from DPO's prompt/chosen/rejected columns)."""

    def _get_train_sampler(self, train_dataset: Any = None) -> Sampler[int] | None:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or not isinstance(dataset, Dataset):
            return super()._get_train_sampler(train_dataset)
        lengths = [
            len(p) + max(len(c), len(r))
            for p, c, r in zip(
                dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"], strict=True
            )
        ]
        generator = torch.Generator().manual_seed(self.args.data_seed or self.args.seed)
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return LengthGroupedSampler(batch, lengths=lengths, generator=generator)

    def _precompute_ref_logps(self, dataset: Dataset, name: str, batch_size: int) -> Dataset:
        """With several workers: each rank computes the reference log-probs of its share of the rows, the
        shares are gathered, and every rank adds the columns to its own copy of the dataset. (TRL's own
        version writes them once, on rank 0, into a datasets cache file for the others to read; an
        in-memory dataset keeps that file in a per-process temporary folder no other rank can see, and
        the ranks of a Ray job need not share a disk.) One worker: TRL's version."""
        if self.accelerator.num_processes == 1:
            result: Dataset = super()._precompute_ref_logps(dataset, name, batch_size)
            return result
        loader = self.accelerator.prepare(
            DataLoader(dataset, batch_size=batch_size, collate_fn=self.data_collator, shuffle=False)
        )
        chosen, rejected = [], []
        for batch in loader:
            shard = self.compute_ref_log_probs(self.model, batch)  # type: ignore[no-untyped-call]
            # In rank order, less the rows the last uneven batch repeats: the dataset's own order.
            chosen_part, rejected_part = self.accelerator.gather_for_metrics(shard)
            chosen.append(chosen_part.cpu())
            rejected.append(rejected_part.cpu())
        return dataset.add_column("ref_chosen_logps", torch.cat(chosen).numpy()).add_column(
            "ref_rejected_logps", torch.cat(rejected).numpy()
        )


class KaizenSFTTrainer(CountsTokens, SFTTrainer):
    """SFTTrainer that counts tokens."""


def build_trainer(
    config: TrainerConfig,
    snapshot: Snapshot,
    output_dir: Path,
    callbacks: list[Any] | None = None,
    trl_overrides: dict[str, Any] | None = None,
) -> KaizenDPOTrainer | KaizenSFTTrainer:
    """The TRL trainer for ``config`` on ``snapshot``'s train split (the held-out split is evaluated by
    trainer.evaluate after training, with the same definition for both methods). ``trl_overrides``
    replace TRL arguments; benchmarks use it to put TRL's own defaults back."""
    quiet()
    model, tokenizer = load_base(config)
    # The two methods differ in TRL's argument class, a few arguments and the rows they learn from.
    make_args: Callable[..., DPOConfig | SFTConfig]
    make_trainer: Callable[..., KaizenDPOTrainer | KaizenSFTTrainer]
    if config.method == Method.DPO:
        make_args, make_trainer, rows = DPOConfig, KaizenDPOTrainer, preference_rows(snapshot.train)
        method_args = {
            "beta": config.hyperparameters.beta,
            "precompute_ref_log_probs": precompute_reference(config, len(snapshot.train)),
            **dpo_loss(config),
        }
    else:
        make_args, make_trainer, rows = SFTConfig, KaizenSFTTrainer, completion_rows(snapshot.train)
        method_args = {"padding_free": config.efficiency.padding_free}
    args: Any = make_args(
        **{**training_arguments(config, output_dir), **method_args, **(trl_overrides or {})}
    )
    trainer = make_trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(config),
        callbacks=callbacks,
    )
    trainer.counter = TokenCounter()
    return trainer
