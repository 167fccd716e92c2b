"""Snapshots, the synthetic task, the tiny model and the evaluation arithmetic — in process, no Ray."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from peft import get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from devstack import synthetic
from tests.trainer.support import tiny_config
from trainer import tiny, tiny_coder
from trainer.config import Efficiency, Hyperparameters, Method
from trainer.data import (
    SnapshotError,
    completion_rows,
    content_hash,
    preference_rows,
    read_snapshot,
    sft_prompt,
    write_snapshot,
)
from trainer.evaluate import Scores, evaluate, metrics_from_scores
from trainer.train import build_trainer, dpo_loss, lora_config, passes_over_data, precompute_reference


def test_snapshot_round_trips_and_its_hash_depends_only_on_rows(tmp_path: Path) -> None:
    written = synthetic.write(tmp_path / "parquet", Method.DPO, train=20, eval=5)
    read = read_snapshot(str(tmp_path / "parquet"), written.content_hash)
    assert (read.train, read.eval, read.content_hash) == (written.train, written.eval, written.content_hash)
    meta = json.loads((tmp_path / "parquet" / "snapshot.json").read_text())
    assert meta == {"contentHash": written.content_hash, "trainRows": 20, "evalRows": 5}
    # The same rows as JSON lines hash the same: the hash is of content, not of encoding.
    jsonl = tmp_path / "jsonl"
    jsonl.mkdir()
    for name, rows in (("train", written.train), ("eval", written.eval)):
        (jsonl / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_snapshot(f"file://{jsonl}").content_hash == written.content_hash
    # Order, a single character, or a row moved between splits all change it.
    assert content_hash(written.train[::-1], written.eval) != written.content_hash
    moved = written.train[:-1], [written.train[-1], *written.eval]
    assert content_hash(*moved) != written.content_hash


def test_a_snapshot_that_is_not_the_one_named_is_refused(tmp_path: Path) -> None:
    written = synthetic.write(tmp_path / "s", Method.DPO, train=8, eval=2)
    rows = [dict(r) for r in written.train]
    rows[0]["chosen"] += " "
    write_snapshot(tmp_path / "s", rows, written.eval)  # one trailing space in one answer
    with pytest.raises(SnapshotError, match="hashes to"):
        read_snapshot(str(tmp_path / "s"), written.content_hash)
    with pytest.raises(SnapshotError, match=r"no train\.parquet"):
        read_snapshot(str(tmp_path / "missing"))


def test_rows_become_trl_formats_for_both_methods() -> None:
    sft = [{"instruction": "Fix the bug.", "input": "x = 1 +", "output": "x = 1 + 1", "rejected": "x ="}]
    assert sft_prompt(sft[0]) == "Fix the bug.x = 1 +\n"
    assert completion_rows(sft) == [{"prompt": "Fix the bug.x = 1 +\n", "completion": "x = 1 + 1"}]
    assert preference_rows(sft) == [
        {"prompt": "Fix the bug.x = 1 +\n", "chosen": "x = 1 + 1", "rejected": "x ="}
    ]
    pairs = [{"prompt": "p", "chosen": "c", "rejected": "r", "source": "human"}]
    assert preference_rows(pairs) == [{"prompt": "p", "chosen": "c", "rejected": "r"}]
    assert completion_rows(pairs) == [{"prompt": "p", "completion": "c"}]
    assert preference_rows([{"instruction": "i", "output": "o"}]) == []
    with pytest.raises(SnapshotError, match="neither"):
        completion_rows([{"text": "unsupported"}])


def test_synthetic_task_is_deterministic_and_held_out_prompts_are_unseen() -> None:
    train = synthetic.pairs(300, held_out=False, seed=3)
    held_out = synthetic.pairs(100, held_out=True, seed=3)
    assert train == synthetic.pairs(300, held_out=False, seed=3)
    assert not {p.prompt for p in train} & {p.prompt for p in held_out}
    keyword = {"python": "def ", "rust": "fn ", "go": "func ", "javascript": "function "}
    for pair in train + held_out:
        assert pair.prompt.endswith(f" in {pair.language}.\n")
        assert keyword[pair.language] in pair.chosen
        assert keyword[pair.language] not in pair.rejected
    assert {p.language for p in held_out} == set(synthetic.TEMPLATES)


def test_tiny_model_builds_byte_identical_and_its_tokenizer_encodes_any_text(tmp_path: Path) -> None:
    spec = tiny.PRESETS["kaizen-tiny"]
    first, second = tiny.materialize(spec, tmp_path / "a"), tiny.materialize(spec, tmp_path / "b")
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (
            hashlib.sha256((first / name).read_bytes()).digest()
            == hashlib.sha256((second / name).read_bytes()).digest()
        )
    tokenizer = AutoTokenizer.from_pretrained(first)
    text = "naïve café — ünïcödé ✓ 日本語 def f(x): return x"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    model = AutoModelForCausalLM.from_pretrained(first)
    assert model.config.hidden_size == 64
    assert model.config.num_hidden_layers == 2
    assert sum(p.numel() for p in model.parameters()) < 200_000
    with pytest.raises(ValueError, match="presets"):
        tiny.resolve("tiny://no-such-model")


def test_a_pre_trained_preset_builds_byte_identical_and_learns_the_coder_format(tmp_path: Path) -> None:
    # kaizen-coder's recipe at a size that builds in seconds: same code path, fewer steps
    spec = replace(tiny.PRESETS["kaizen-coder"], hidden=32, layers=1, intermediate=64, pretrain_steps=40)
    threads = torch.get_num_threads()
    first, second = tiny.materialize(spec, tmp_path / "a"), tiny.materialize(spec, tmp_path / "b")
    assert torch.get_num_threads() == threads  # pre-training runs on one thread and gives the rest back
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    tokenizer = AutoTokenizer.from_pretrained(first)
    corpus = tiny_coder.documents(64, tokenizer.eos_token, seed=7)
    losses = []
    for model in (tiny.build_model(spec, len(tokenizer)), AutoModelForCausalLM.from_pretrained(first)):
        batch = tokenizer(corpus, return_tensors="pt", padding=True)
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
        with torch.no_grad():
            losses.append(model(**batch, labels=labels).loss.item())
    assert losses[1] < losses[0] - 1.0  # 40 steps already learn some of the format (6.2 -> 4.8 nats)


def test_gate_metrics_follow_their_definitions() -> None:
    policy = Scores(
        chosen=torch.tensor([-10.0, -12.0, -9.0, -20.0]),
        rejected=torch.tensor([-15.0, -11.0, -9.5, -10.0]),
        chosen_tokens=torch.tensor([5, 5, 5, 10]),
    )
    base = Scores(
        chosen=torch.tensor([-14.0, -12.0, -10.0, -25.0]),
        rejected=torch.tensor([-14.0, -12.0, -10.0, -12.0]),
        chosen_tokens=torch.tensor([5, 5, 5, 10]),
    )
    metrics = metrics_from_scores(policy, base, beta=0.5)
    assert metrics["preference_accuracy"] == 0.5  # pairs 1 and 3 prefer chosen under the policy
    assert metrics["baseline_preference_accuracy"] == 0.0
    # implicit reward margins beta * (d_chosen - d_rejected) = 0.5 * [4 - -1, 0 - 1, 1 - 0.5, 5 - 2]
    assert metrics["reward_margin"] == pytest.approx((2.5 - 0.5 + 0.25 + 1.5) / 4)
    assert metrics["reward_accuracy"] == 0.75
    assert metrics["chosen_logprob_gain"] == pytest.approx((4 / 5 + 0 + 1 / 5 + 5 / 10) / 4)


def test_an_untrained_adapter_changes_nothing(tmp_path: Path, model_cache: Path) -> None:
    """LoRA starts as the identity (B = 0): the evaluation must then see no margin and base-level accuracy."""
    snapshot = synthetic.write(tmp_path / "s", Method.DPO, train=4, eval=16)
    config = tiny_config(tmp_path, "identity", Method.DPO, snapshot)
    folder = tiny.resolve("tiny://kaizen-tiny")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(folder), lora_config(config))
    metrics = evaluate(model, tokenizer, preference_rows(snapshot.eval), beta=0.1)
    assert metrics["reward_margin"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["preference_accuracy"] == metrics["baseline_preference_accuracy"]
    assert metrics["eval_pairs"] == 16


def test_an_sft_weight_adds_trls_sft_term_to_the_dpo_loss(tmp_path: Path) -> None:
    snapshot = synthetic.write(tmp_path / "s", Method.DPO, train=8, eval=2)
    plain = tiny_config(tmp_path, "plain", Method.DPO, snapshot, workers=1)
    weighted = plain.model_copy(update={"hyperparameters": Hyperparameters(sft_weight=0.5, batch_size=4)})
    assert dpo_loss(plain) == {}
    assert build_trainer(plain, snapshot, tmp_path / "p").args.loss_type == ["sigmoid"]
    args = build_trainer(weighted, snapshot, tmp_path / "w").args
    assert args.loss_type == ["sigmoid", "sft"]
    assert args.loss_weights == [1.0, 0.5]
    trainer = build_trainer(weighted.model_copy(update={"hyperparameters": Hyperparameters(
        sft_weight=0.5, batch_size=4, max_steps=2)}), snapshot, tmp_path / "t")  # fmt: skip
    assert trainer.train().global_step == 2  # TRL accepts the combination and trains with it


def test_reference_is_precomputed_when_training_sees_the_data_more_than_once(tmp_path: Path) -> None:
    snapshot = synthetic.write(tmp_path / "s", Method.DPO, train=4, eval=1)
    one = tiny_config(tmp_path, "one", Method.DPO, snapshot, workers=1)  # 150 steps x batch 8
    assert passes_over_data(one, 256) == pytest.approx(150 * 8 / 256)
    assert precompute_reference(one, 256)
    assert not precompute_reference(one, 5000), "less than one pass: nothing to reuse"
    two = tiny_config(tmp_path, "two", Method.DPO, snapshot, workers=2)  # 150 steps x 2 workers x 4
    assert precompute_reference(two, 256)
    assert not precompute_reference(two, 1201)
    refused = one.model_copy(update={"efficiency": Efficiency(precompute_ref_log_probs=False)})
    assert not precompute_reference(refused, 256)
    epochs = one.model_copy(update={"hyperparameters": Hyperparameters(epochs=3)})
    assert passes_over_data(epochs, 10) == 3.0
