"""The coder task and the pre-training that makes ``tiny://kaizen-coder`` a base worth improving.

The task is "Write <name> in <language>.", answered by a one-line identity function. Names are a verb
and a two-syllable noun (16 x 900 of them), so no model can memorise them: it has to copy the name
from the prompt. A fixed third of the names, chosen by hash, is held out: no pre-training document,
and no task the demo's agents are given, ever contains one, so a pass rate on them measures what a
model learned, not what it saw.

The pre-training corpus is code whose instructions were only loosely followed: 30 % of documents
answer in the language asked for, the rest in any of four (two of which the checker cannot even
parse as the languages asked for). A model pre-trained on it writes the right format and copies names
well, but at temperature 1 picks the asked language only about 45 % of the time: the gap that
corrections close. Pre-training is deterministic (seeded, one thread), so every process that builds
the preset gets the same weights.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from collections.abc import Iterator

import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

ASKED = ("javascript", "python")  # the languages tasks ask for: the ones the checker can run
WRITTEN = ("go", "javascript", "python", "rust")  # the languages the corpus answers in
TEMPLATES = {
    "python": "def {name}(x):\n    return x\n",
    "rust": "fn {name}(x: i32) -> i32 {{ x }}\n",
    "go": "func {name}(x int) int {{ return x }}\n",
    "javascript": "function {name}(x) {{ return x; }}\n",
}
VERBS = ("add", "parse", "load", "save", "sort", "merge", "split", "count",
         "find", "check", "build", "send", "read", "write", "clear", "reset")  # fmt: skip
# Nouns are two of these syllables: 900 of them, so a name is copied from the prompt, not remembered.
SYLLABLES = ("ba", "be", "bo", "da", "de", "do", "ka", "ke", "ko", "la", "le", "lo", "ma", "me", "mo",
             "na", "ne", "no", "pa", "pe", "po", "ra", "re", "ro", "sa", "se", "so", "ta", "te", "to")  # fmt: skip
FOLLOW = 0.3  # share of pre-training documents that answer in the asked language


def prompt(name: str, language: str) -> str:
    return f"Write {name} in {language}.\n"


def answer(name: str, language: str) -> str:
    return TEMPLATES[language].format(name=name)


def held_out(name: str) -> bool:
    """A fixed third of all names, by hash: never in pre-training, never in an agent's task."""
    return hashlib.sha256(name.encode()).digest()[0] % 3 == 0


def names(rng: random.Random, *, held: bool) -> Iterator[str]:
    """Endless names from one side of the split, drawn with ``rng``."""
    while True:
        name = f"{rng.choice(VERBS)}_{rng.choice(SYLLABLES)}{rng.choice(SYLLABLES)}"
        if held_out(name) == held:
            yield name


def documents(count: int, eos: str, seed: int = 0) -> list[str]:
    """The pre-training corpus: prompts for training-side names, each answered in the asked language
    with probability FOLLOW and in a uniformly drawn one otherwise, each ended by ``eos``."""
    rng = random.Random(f"kaizen-coder-{seed}")
    source = names(rng, held=False)
    corpus = []
    for _ in range(count):
        name, asked = next(source), rng.choice(ASKED)
        written = asked if rng.random() < FOLLOW else rng.choice(WRITTEN)
        corpus.append(prompt(name, asked) + answer(name, written) + eos)
    return corpus


def pretrain(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    corpus: list[str],
    steps: int,
    *,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
) -> None:
    """Next-token training over ``corpus`` in order, one thread (deterministic), linear warm-up then
    decay to a tenth; progress on stderr every 100 steps."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    started = time.monotonic()
    model.train()
    try:
        for step in range(steps):
            batch = [corpus[(step * batch_size + j) % len(corpus)] for j in range(batch_size)]
            encoded = tokenizer(batch, return_tensors="pt", padding=True)
            labels = encoded.input_ids.masked_fill(encoded.attention_mask == 0, -100)
            scale = min(1.0, (step + 1) / 30) * (0.1 + 0.9 * (1 - step / steps))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate * scale
            loss = model(**encoded, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if (step + 1) % 100 == 0 or step + 1 == steps:
                elapsed = time.monotonic() - started
                print(f"kaizen-coder: pre-training step {step + 1}/{steps}, loss {loss.item():.3f}, {elapsed:.0f}s",
                      file=sys.stderr, flush=True)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
        model.train(False)
