"""A model's pass rate on held-out coder tasks, measured by the checker.

Tasks use names that ``trainer.tiny_coder`` holds out from pre-training and from every task agents are
given, so the rate measures what a model learned. Answers are sampled as agents sample them
(temperature 1, a fixed seed, so that two measurements of one model agree) and each is graded by
running it (``devstack.checker.grade``). The rate comes with a Wilson 95 % interval.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.utils import logging as transformers_logging

from devstack.checker.grade import Task, grade
from devstack.checker.passrate import PassRate
from trainer import tiny_coder


def tasks(count: int, *, held: bool = True, seed: int = 0) -> list[Task]:
    """``count`` distinct tasks from one side of the name split, languages alternating (drawn without
    replacement: a measurement on 200 tasks is on 200 different ones)."""
    names = tiny_coder.names(random.Random(f"tasks-{held}-{seed}"), held=held)
    chosen: dict[Task, None] = {}
    while len(chosen) < count:
        chosen.setdefault(Task(next(names), tiny_coder.ASKED[len(chosen) % len(tiny_coder.ASKED)]))
    return list(chosen)


def load(base: Path, adapter: Path | None = None) -> tuple[PreTrainedModel, object]:
    """The base model folder, with a PEFT adapter folder merged in when given."""
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a bar per load would break the story's lines
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.padding_side = "left"  # generation continues each prompt from its last token
    model = AutoModelForCausalLM.from_pretrained(base)
    if adapter is not None:
        from peft import PeftModel

        with warnings.catch_warnings():  # transformers' deprecation notices, raised inside peft
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.train(False)
    return model, tokenizer


def sample(model: PreTrainedModel, tokenizer: object, prompts: Sequence[str], seed: int) -> list[str]:
    """One answer per prompt at temperature 1, in batches, reproducible for a given seed."""
    answers: list[str] = []
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for start in range(0, len(prompts), 64):
            encoded = tokenizer(list(prompts[start : start + 64]), return_tensors="pt", padding=True)  # type: ignore[operator]
            with torch.no_grad():
                output = model.generate(  # type: ignore[operator]
                    **encoded,
                    max_new_tokens=32,
                    do_sample=True,
                    temperature=1.0,
                    top_p=1.0,
                    eos_token_id=tokenizer.eos_token_id,  # type: ignore[attr-defined]
                    pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]
                )
            width = encoded.input_ids.shape[1]
            answers += [tokenizer.decode(row[width:], skip_special_tokens=True) for row in output]  # type: ignore[attr-defined]
    finally:
        torch.random.set_rng_state(generator_state)
    return answers


def pass_rate(model: PreTrainedModel, tokenizer: object, items: Sequence[Task], seed: int = 0) -> PassRate:
    answers = sample(model, tokenizer, [task.prompt for task in items], seed)
    return PassRate(
        sum(grade(task, text).passed for task, text in zip(items, answers, strict=True)), len(items)
    )
