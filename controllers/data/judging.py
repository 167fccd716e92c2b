"""What to ask an LLM judge and what its answer means: pure, so the store can pick the questions and
the client (``controllers.clients.judge``) only sends them.

The judge is for attempts at the same task that the signals cannot separate (no reward, or a gap
under the margin). The texts sent out are PII-scrubbed first; the two answers are shown in an order
fixed by a hash of their ids, so position bias averages out across pairs yet a rerun asks the same
question. The judge model and rubric are stored with every pair it produces.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from controllers.data.pairs import Attempt, MinedPair, PairSource
from controllers.data.pii import scrub

SYSTEM = "You compare two answers to the same task. Reply with exactly one letter: A or B."


def undecided_pairs(attempts: Iterable[Attempt], min_margin: float) -> list[tuple[Attempt, Attempt]]:
    """Attempt pairs with the same prompt whose rewards are missing or closer than ``min_margin``."""
    groups: dict[tuple[str, str, str, str], list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        groups[(attempt.agent, attempt.role, attempt.task_id, attempt.prompt)].append(attempt)
    undecided = []
    for group in groups.values():
        for a, b in itertools.combinations(sorted(group, key=lambda x: x.id), 2):
            close = a.reward is None or b.reward is None or abs(a.reward - b.reward) < min_margin
            if close and a.output != b.output:
                undecided.append((a, b))
    return undecided


def _swapped(a: Attempt, b: Attempt) -> bool:
    return hashlib.sha256(f"{a.id}|{b.id}".encode()).digest()[0] % 2 == 1


def question(rubric: str, prompt: str, first: str, second: str) -> str:
    return (
        f"Rubric: {rubric}\n\nTask:\n{scrub(prompt)}\n\nAnswer A:\n{scrub(first)}\n\nAnswer B:\n{scrub(second)}\n\n"
        "Which answer is better under the rubric? Reply A or B."
    )


def parse_verdict(text: str) -> str | None:
    word = text.strip().strip(".*:\"'` ").upper()[:1]
    return word if word in ("A", "B") else None


def comparison(a: Attempt, b: Attempt) -> frozenset[str]:
    """Which two attempts a question compares, in either order: the key of "asked already"."""
    return frozenset((a.id, b.id))


def request_body(model: str, rubric: str, a: Attempt, b: Attempt) -> tuple[dict[str, Any], Attempt, Attempt]:
    """The chat-completions body asking ``model`` about ``a`` and ``b``, and which one it shows as A
    and as B."""
    first, second = (b, a) if _swapped(a, b) else (a, b)
    body = {
        "model": model,
        "temperature": 0,
        "max_tokens": 2,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question(rubric, a.prompt, first.output, second.output)},
        ],
    }
    return body, first, second


def verdict_pair(model: str, rubric: str, first: Attempt, second: Attempt, reply: Any) -> MinedPair | None:
    """The pair a chat-completions reply decides, or None when it says neither A nor B."""
    verdict = parse_verdict(reply["choices"][0]["message"]["content"] or "")
    if verdict is None:
        return None
    chosen, rejected = (first, second) if verdict == "A" else (second, first)
    return MinedPair(
        PairSource.LLM_JUDGE,
        first.prompt,
        chosen.output,
        rejected.output,
        None,
        chosen.id,
        rejected.id,
        first.agent,
        first.role,
        first.task_family,
        model,
        rubric,
    )
