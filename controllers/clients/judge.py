"""LLM-judge pairs: ask any OpenAI-compatible endpoint which of two attempts is better.

Used for attempts at the same task that the signals cannot separate (no reward, or a gap under the
margin). The texts sent out are PII-scrubbed first; the two answers are shown in an order fixed by
a hash of their ids, so position bias averages out across pairs yet a rerun asks the same question.
The judge model and rubric are stored with every pair it produces.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from controllers.data.pairs import Attempt, MinedPair
from controllers.data.pii import scrub
from controllers.store.models import PairSource

SYSTEM = "You compare two answers to the same task. Reply with exactly one letter: A or B."


@dataclass(frozen=True)
class JudgeSettings:
    endpoint: str  # base URL, e.g. http://judge:8000/v1
    model: str
    rubric: str
    min_margin: float = 0.2
    api_key: str | None = None
    max_pairs: int = 1000


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


def request_body(settings: JudgeSettings, a: Attempt, b: Attempt) -> tuple[dict[str, Any], Attempt, Attempt]:
    """The chat-completions body asking about ``a`` and ``b``, and which one it shows as A and as B."""
    first, second = (b, a) if _swapped(a, b) else (a, b)
    body = {
        "model": settings.model,
        "temperature": 0,
        "max_tokens": 2,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question(settings.rubric, a.prompt, first.output, second.output)},
        ],
    }
    return body, first, second


def verdict_pair(settings: JudgeSettings, first: Attempt, second: Attempt, reply: Any) -> MinedPair | None:
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
        settings.model,
        settings.rubric,
    )


def _url_and_headers(settings: JudgeSettings) -> tuple[str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    return f"{settings.endpoint.rstrip('/')}/chat/completions", headers


def judge(
    client: httpx.Client, settings: JudgeSettings, attempts: Iterable[Attempt]
) -> tuple[list[MinedPair], int]:
    """Pairs from the judge's verdicts, and how many answers could not be parsed."""
    url, headers = _url_and_headers(settings)
    pairs, unparsed = [], 0
    for a, b in undecided_pairs(attempts, settings.min_margin)[: settings.max_pairs]:
        body, first, second = request_body(settings, a, b)
        response = client.post(url, headers=headers, json=body)
        response.raise_for_status()
        pair = verdict_pair(settings, first, second, response.json())
        if pair is None:
            unparsed += 1
        else:
            pairs.append(pair)
    return pairs, unparsed


async def ask(client: httpx.AsyncClient, settings: JudgeSettings, a: Attempt, b: Attempt) -> MinedPair | None:
    """One question to the judge without blocking the event loop; raises httpx.HTTPError (a status
    error too) or KeyError/ValueError for a reply that is not a chat completion."""
    url, headers = _url_and_headers(settings)
    body, first, second = request_body(settings, a, b)
    response = await client.post(url, headers=headers, json=body)
    response.raise_for_status()
    return verdict_pair(settings, first, second, response.json())
