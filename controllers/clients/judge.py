"""The LLM-judge client: asks any OpenAI-compatible endpoint which of two attempts is better.

Only the HTTP lives here; which questions to ask, how they are worded and what a reply decides are
pure (``controllers.data.judging``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from controllers.data.judging import request_body, undecided_pairs, verdict_pair
from controllers.data.pairs import Attempt, MinedPair


@dataclass(frozen=True)
class JudgeSettings:
    endpoint: str  # base URL, e.g. http://judge:8000/v1
    model: str
    rubric: str
    min_margin: float = 0.2
    api_key: str | None = None
    max_pairs: int = 1000


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
        body, first, second = request_body(settings.model, settings.rubric, a, b)
        response = client.post(url, headers=headers, json=body)
        response.raise_for_status()
        pair = verdict_pair(settings.model, settings.rubric, first, second, response.json())
        if pair is None:
            unparsed += 1
        else:
            pairs.append(pair)
    return pairs, unparsed


async def ask(client: httpx.AsyncClient, settings: JudgeSettings, a: Attempt, b: Attempt) -> MinedPair | None:
    """One question to the judge without blocking the event loop; raises httpx.HTTPError (a status
    error too) or KeyError/ValueError for a reply that is not a chat completion."""
    url, headers = _url_and_headers(settings)
    body, first, second = request_body(settings.model, settings.rubric, a, b)
    response = await client.post(url, headers=headers, json=body)
    response.raise_for_status()
    return verdict_pair(settings.model, settings.rubric, first, second, response.json())
