"""OpenAI response bodies and server-sent-event chunks, shaped from a generation's steps.

The shapes are those of vLLM's OpenAI-compatible server (and OpenAI's API): ``text_completion`` and
``chat.completion`` objects with ``usage``; when streaming, ``chat.completion.chunk`` /
``text_completion`` chunks, an opening chunk with the assistant role, a usage-only chunk when
``stream_options.include_usage`` is set, and ``data: [DONE]``. Log-probabilities in the completions
form (``tokens``/``token_logprobs``/``top_logprobs``) or the chat form (``content`` entries).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from devstack.generation import Step, finite


class Reply:
    """Shapes steps into OpenAI completion / chat completion bodies and chunks."""

    def __init__(self, model: str, chat: bool, prompt_tokens: int, logprobs: bool) -> None:
        self.model, self.chat, self.prompt_tokens, self.logprobs = model, chat, prompt_tokens, logprobs
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self.object = "chat.completion" if chat else "text_completion"

    def _logprobs(self, steps: list[Step]) -> dict[str, Any] | None:
        tokens = [s.token for s in steps if s.token is not None]
        if not self.logprobs:
            return None
        if self.chat:
            return {
                "content": [
                    {
                        "token": t.token,
                        "logprob": finite(t.logprob),
                        "bytes": list(t.token.encode()),
                        "top_logprobs": [
                            {"token": k, "logprob": finite(v), "bytes": list(k.encode())} for k, v in t.top
                        ],
                    }
                    for t in tokens
                ]
            }
        return {
            "tokens": [t.token for t in tokens],
            "token_logprobs": [finite(t.logprob) for t in tokens],
            "top_logprobs": [{k: finite(v) for k, v in t.top} for t in tokens],
        }

    def _usage(self, completion_tokens: int) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }

    def _envelope(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": extra.pop("object", self.object),
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }

    async def whole(self, events: AsyncIterator[Step]) -> dict[str, Any]:
        steps = [step async for step in events]
        text = "".join(s.text for s in steps)
        choice: dict[str, Any] = {
            "index": 0,
            "logprobs": self._logprobs(steps),
            "finish_reason": steps[-1].finish_reason,
        }
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return self._envelope([choice], usage=self._usage(sum(s.token is not None for s in steps)))

    async def stream(self, events: AsyncIterator[Step], include_usage: bool) -> AsyncIterator[str]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        count = 0
        if self.chat:
            start = {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
            yield _sse(self._envelope([start], object=kind))
        async for step in events:
            count += step.token is not None
            if not step.text and step.finish_reason is None:
                continue
            piece = {"content": step.text} if step.text or not self.chat else {}
            choice: dict[str, Any] = {
                "index": 0,
                "logprobs": self._logprobs([step]),
                "finish_reason": step.finish_reason,
            }
            if self.chat:
                choice["delta"] = piece
            else:
                choice["text"] = step.text
            yield _sse(self._envelope([choice], object=kind))
        if include_usage:
            yield _sse(self._envelope([], object=kind, usage=self._usage(count)))
        yield "data: [DONE]\n\n"


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
