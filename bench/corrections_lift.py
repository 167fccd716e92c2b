"""Does learning from corrections make the loop's base model better? Measured by the checker.

The base is ``tiny://kaizen-coder`` (built once per machine, see trainer/tiny_coder.py). Agents ask it
for training-side coder tasks at temperature 1; every answer the checker fails becomes a correction
(the prompt, the right answer a person would write, and the model's own wrong one). The same
corrections then train one LoRA adapter per method with the trainer's own code (trainer.train.
build_trainer, as a Ray worker runs it): SFT on the corrected answers, DPO (right over wrong), and DPO
with an SFT term on the chosen answer (the policy's ``hyperparameters.sftWeight: 1.0``). Each model,
and the base side by side in the same run, answers held-out tasks (names no corpus or task contains)
and the checker grades every answer; pass rates carry Wilson 95 % intervals.

    .venv/bin/python bench/corrections_lift.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from devstack.checker import heldout
from devstack.checker.grade import grade
from trainer import tiny, tiny_coder
from trainer.config import TrainerConfig
from trainer.data import write_snapshot

SIZES = {
    "full": {"held_out": 200, "corrections_from": 256},
    "quick": {"held_out": 60, "corrections_from": 64},
}
GOAL_LIFT = 0.30  # the goal for the loop's final champion; one round of corrections should reach it
METHODS: dict[str, dict[str, Any]] = {
    "SFT": {"method": "SFT", "learning_rate": 2e-3},
    "DPO": {"method": "DPO", "learning_rate": 5e-4},
    "DPO+SFT": {"method": "DPO", "learning_rate": 2e-3, "sft_weight": 1.0},  # the policy's sftWeight
}


def corrections(base: Path, count: int) -> tuple[list[dict[str, str]], float]:
    """Corrections for the base's failed answers on ``count`` training-side tasks, and its pass rate there."""
    model, tokenizer = heldout.load(base)
    items = heldout.tasks(count, held=False, seed=1)
    answers = heldout.sample(model, tokenizer, [t.prompt for t in items], seed=1)
    rows = []
    for task, text in zip(items, answers, strict=True):
        if not grade(task, text).passed:
            rows.append(
                {
                    "prompt": task.prompt,
                    "chosen": tiny_coder.answer(task.name, task.language),
                    "rejected": text,
                }
            )
    return rows, 1 - len(rows) / count


def train(base: Path, rows: list[dict[str, str]], name: str, folder: Path) -> Path:
    """One adapter on ``rows`` with the trainer's own TRL setup; returns the adapter folder."""
    from trainer.train import build_trainer

    setting = METHODS[name]
    if setting["method"] == "SFT":
        rows = [
            {"instruction": r["prompt"], "input": "", "output": r["chosen"], "rejected": r["rejected"]}
            for r in rows
        ]
    snapshot = write_snapshot(folder / "dataset", rows, rows[:16])
    config = TrainerConfig.model_validate(
        {
            "run_name": "lift",
            "method": setting["method"],
            "base_model": {"name": "kaizen-coder", "uri": str(base)},
            "lora": {"rank": 16, "alpha": 32, "dropout": 0.0},
            "hyperparameters": {
                "epochs": 5,
                "learning_rate": setting["learning_rate"],
                "sft_weight": setting.get("sft_weight", 0.0),
                "batch_size": 8,
                "max_length": 128,
            },
            "dataset": {"uri": str(folder / "dataset")},
            "output_uri": str(folder),
            "checkpointing": {"every_steps": 100_000},
        }
    )
    trainer = build_trainer(config, snapshot, folder / "scratch")
    trainer.train()
    trainer.model.save_pretrained(str(folder / "adapter"))
    return folder / "adapter"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer tasks and corrections (minutes, not tens)"
    )
    size = SIZES["quick" if parser.parse_args().quick else "full"]
    started = time.monotonic()
    print("building or reusing tiny://kaizen-coder (pre-training takes minutes the first time)", flush=True)
    base = tiny.resolve("tiny://kaizen-coder")
    items = heldout.tasks(size["held_out"])
    model, tokenizer = heldout.load(base)
    baseline = heldout.pass_rate(model, tokenizer, items)
    print(f"base          held-out pass rate {baseline}", flush=True)
    rows, seen_rate = corrections(base, size["corrections_from"])
    print(f"corrections   {len(rows)} from {size['corrections_from']} training-side tasks "
          f"(base passed {seen_rate:.1%} of them)", flush=True)  # fmt: skip
    rates = {}
    with tempfile.TemporaryDirectory(prefix="kaizen-lift-") as scratch:
        for name in METHODS:
            adapter = train(base, rows, name, Path(scratch, name))
            tuned, tuned_tokenizer = heldout.load(base, adapter)
            rates[name] = heldout.pass_rate(tuned, tuned_tokenizer, items)
            print(f"{name:<13} held-out pass rate {rates[name]}", flush=True)
    best = max(rates, key=lambda k: rates[k].rate)
    lift = rates[best].rate - baseline.rate
    print(f"RESULT corrections_lift base_pass_rate={baseline.rate:.3f}")
    for name, rate in rates.items():
        print(f"RESULT corrections_lift {name.lower().replace('+', '_')}_pass_rate={rate.rate:.3f}")
    print(f"RESULT corrections_lift best_lift={lift:.3f} goal>={GOAL_LIFT} ({best})")
    print(
        f"corrections_lift: {time.monotonic() - started:.0f}s; goal {'met' if lift >= GOAL_LIFT else 'NOT met'}"
    )
    return 0 if lift >= GOAL_LIFT else 1


if __name__ == "__main__":
    raise SystemExit(main())
