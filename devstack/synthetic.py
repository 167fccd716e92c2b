"""A synthetic preference task whose chosen answer is learnable, written as a dataset snapshot.

Tests, benchmarks and the embedded default's smoke run need preference data with a known right answer:
"Write <name> in <language>." is answered by a function in that language (chosen) or in another one
(rejected). A model can only prefer the chosen answer on held-out prompts by reading the language from
the prompt, so held-out preference accuracy measures learning, not a bias for one style. Evaluation
prompts use function names that never occur in training (no prompt in both splits).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.config import Method
from trainer.data import Snapshot, write_snapshot

TEMPLATES = {
    "python": "def {name}(x):\n    return x\n",
    "rust": "fn {name}(x: i32) -> i32 {{ x }}\n",
    "go": "func {name}(x int) int {{ return x }}\n",
    "javascript": "function {name}(x) {{ return x; }}\n",
}
COMMENT = {"python": "# ", "rust": "// ", "go": "// ", "javascript": "// "}
_VERBS = ["add", "parse", "load", "save", "sort", "merge", "split", "count", "find", "check", "build", "send"]
_TRAIN_NOUNS = ["user", "order", "item", "file", "line", "token", "queue", "cache", "block", "event", "route"]
_EVAL_NOUNS = ["account", "invoice", "ticket", "record", "packet", "widget", "bucket", "layer", "metric"]
_FILLER = "keeps the input unchanged because callers rely on identity"


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    language: str


def answer(language: str, name: str, comment_lines: int = 0) -> str:
    """A function in ``language``, optionally preceded by comment lines (to vary lengths)."""
    comments = "".join(f"{COMMENT[language]}{_FILLER}\n" for _ in range(comment_lines))
    return comments + TEMPLATES[language].format(name=name)


def pairs(count: int, *, held_out: bool, seed: int, max_comment_lines: int = 0) -> list[Pair]:
    """``count`` pairs; held-out pairs draw names from nouns training never sees."""
    rng = random.Random(f"{seed}-{held_out}")
    nouns = _EVAL_NOUNS if held_out else _TRAIN_NOUNS
    languages = sorted(TEMPLATES)
    result = []
    for _ in range(count):
        language = rng.choice(languages)
        other = rng.choice([lang for lang in languages if lang != language])
        name = f"{rng.choice(_VERBS)}_{rng.choice(nouns)}"
        lines = rng.randint(0, max_comment_lines)
        result.append(
            Pair(
                prompt=f"Write {name} in {language}.\n",
                chosen=answer(language, name, lines),
                rejected=answer(other, name, lines),
                language=language,
            )
        )
    return result


def rows(items: list[Pair], method: Method) -> list[dict[str, Any]]:
    """Rows in the snapshot format: DPO prompt/chosen/rejected; SFT instruction/input/output (+ rejected
    so that the trainer can also report preference accuracy for an SFT adapter)."""
    if method == Method.DPO:
        return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in items]
    return [
        {"instruction": p.prompt, "input": "", "output": p.chosen, "rejected": p.rejected, "role": "coder"}
        for p in items
    ]


def write(
    folder: Path,
    method: Method = Method.DPO,
    *,
    train: int = 256,
    eval: int = 64,
    seed: int = 0,
    max_comment_lines: int = 0,
) -> Snapshot:
    """Write a snapshot folder for the task and return what was written (with its content hash)."""
    train_pairs = pairs(train, held_out=False, seed=seed, max_comment_lines=max_comment_lines)
    eval_pairs = pairs(eval, held_out=True, seed=seed, max_comment_lines=max_comment_lines)
    return write_snapshot(folder, rows(train_pairs, method), rows(eval_pairs, method))
