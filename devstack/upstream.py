"""A small OpenAI-compatible model server, the stand-in for vLLM's at its HTTP interface.

``POST /v1/chat/completions`` and ``/v1/completions`` answer with vLLM's JSON shapes (``chatcmpl-`` and
``cmpl-`` ids, ``usage``, ``finish_reason``); ``"stream": true`` answers with server-sent events, one
``data: {chunk}\\n\\n`` per token and ``data: [DONE]\\n\\n`` at the end (plus a usage chunk when
``stream_options.include_usage``); errors are ``{"error": {message, type, param, code}}``. The answer
is deterministic and names the persona that produced it, so a test can tell who served a request.

One process serves several *personas*, each under its own base URL ``/<persona>/v1`` (``/v1`` is the
persona ``default``), each with its own behaviour: answer normally, fail with a status, wait before
answering, pace its tokens, or cut the connection mid-stream. ``GET /stats`` counts requests per
persona. Run it with ``python -m devstack.upstream --port N --personas '{"slow": {"delay": 5}}'``
or through ``UpstreamProcess``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack import processes
from devstack.ports import free_port

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


@dataclass(frozen=True)
class Persona:
    fail: int | None = None  # answer every request with this HTTP status
    delay: float = 0.0  # seconds before the response starts
    token_delay: float = 0.0  # seconds between streamed tokens
    tokens: int = 8  # answer length when the request sets no max_tokens
    break_after: int | None = None  # streamed chunks sent before the connection is cut


class CutConnection(Exception):
    """Raised mid-stream so that the server drops the connection, as a crashing model server would."""


@dataclass
class OpenAIUpstream:
    personas: dict[str, Persona] = field(default_factory=lambda: {"default": Persona()})
    served: Counter[str] = field(default_factory=Counter)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                await send({"type": kind + ".complete"})
                if kind == "lifespan.shutdown":
                    return
        path: str = scope["path"]
        if path in ("/health", "/stats"):
            await _json(send, 200, dict(self.served) if path == "/stats" else {})
            return
        if path.startswith("/v1/"):
            name, endpoint = "default", path[4:]
        else:
            name, _, endpoint = path[1:].partition("/v1/")
        persona = self.personas.get(name or "default")
        if persona is None or endpoint not in ("chat/completions", "completions"):
            await _error(send, 404, f"no route {path}", "NotFoundError")
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.served[name] += 1
        if persona.delay:
            await asyncio.sleep(persona.delay)
        if persona.fail:
            await _error(
                send, persona.fail, f"persona {name} fails with {persona.fail}", "InternalServerError"
            )
            return
        try:
            request = json.loads(body)
            words = _answer(name, request, endpoint, persona)
        except (ValueError, KeyError, TypeError) as error:
            await _error(send, 400, f"invalid request: {error}", "BadRequestError")
            return
        chat = endpoint == "chat/completions"
        reply = Reply(chat, str(request.get("model", "default")), words, len(body) // 4)
        if request.get("stream") is True:
            await self._stream(
                send, reply, persona, bool((request.get("stream_options") or {}).get("include_usage"))
            )
        else:
            await _json(send, 200, reply.whole())

    async def _stream(self, send: Send, reply: Reply, persona: Persona, usage: bool) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, chunk in enumerate(reply.chunks(usage)):
            if persona.break_after is not None and index >= persona.break_after:
                raise CutConnection("persona cuts the stream")
            if index and persona.token_delay:
                await asyncio.sleep(persona.token_delay)
            await send({"type": "http.response.body", "body": b"data: " + chunk + b"\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


@dataclass(frozen=True)
class Reply:
    chat: bool
    model: str
    words: list[str]
    prompt_tokens: int
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def id(self) -> str:
        return ("chatcmpl-" if self.chat else "cmpl-") + os.urandom(12).hex()

    def usage(self) -> dict[str, int]:
        completion = len(self.words)
        return {
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.prompt_tokens + completion,
            "completion_tokens": completion,
        }

    def whole(self) -> dict[str, Any]:
        text = " ".join(self.words)
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": "stop", "stop_reason": None}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text, "tool_calls": []}
        else:
            choice["text"] = text
        kind = "chat.completion" if self.chat else "text_completion"
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage(),
        }

    def chunks(self, usage: bool) -> list[bytes]:
        ident, kind = self.id, "chat.completion.chunk" if self.chat else "text_completion"

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            document = {
                "id": ident,
                "object": kind,
                "created": self.created,
                "model": self.model,
                "choices": choices,
                **extra,
            }
            return json.dumps(document, separators=(",", ":")).encode()

        def piece(text: str, finish: str | None, role: bool = False) -> dict[str, Any]:
            content: dict[str, Any] = ({"role": "assistant"} if role else {}) | {"content": text}
            return {
                "index": 0,
                **({"delta": content} if self.chat else {"text": text}),
                "logprobs": None,
                "finish_reason": finish,
            }

        parts = [chunk([piece("", None, role=True)])] if self.chat else []
        parts += [chunk([piece(("" if i == 0 else " ") + word, None)]) for i, word in enumerate(self.words)]
        parts.append(chunk([piece("", "stop") | {"stop_reason": None}]))
        if usage:
            parts.append(chunk([], usage=self.usage()))
        return parts


def _answer(name: str, request: dict[str, Any], endpoint: str, persona: Persona) -> list[str]:
    if endpoint == "chat/completions":
        messages = request["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("messages must be a non-empty list")
        prompt = str(messages[-1]["content"])
    else:
        prompt = str(request["prompt"])
    length = int(request.get("max_tokens") or persona.tokens)
    words = [name, "answers", *prompt.split()]
    return [words[i % len(words)] for i in range(max(1, length))]


async def _json(send: Send, status: int, document: dict[str, Any]) -> None:
    body = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, message: str, kind: str) -> None:
    await _json(send, status, {"error": {"message": message, "type": kind, "param": None, "code": status}})


@dataclass
class UpstreamProcess:
    """The upstream as its own uvicorn process on a free loopback port."""

    log: Path
    personas: dict[str, dict[str, Any]] = field(default_factory=lambda: {"default": {}})
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base(self, persona: str = "default") -> str:
        """The OpenAI base URL of one persona (what a RouteVariant's endpoint holds)."""
        return f"{self.url}/v1" if persona == "default" else f"{self.url}/{persona}/v1"

    def start(self, timeout: float = 30.0) -> None:
        self.port = self.port or free_port()
        command = [
            sys.executable,
            "-m",
            "devstack.upstream",
            "--port",
            str(self.port),
            "--personas",
            json.dumps(self.personas),
        ]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        processes.wait_until_answering(self._process, f"{self.url}/health", "upstream", self.log, timeout)

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.url}/stats", timeout=5).json())

    def stop(self) -> None:
        processes.stop(self._process, grace=10)
        self._process = None


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--personas", default='{"default": {}}', help="JSON: persona name -> Persona fields")
    args = parser.parse_args()
    personas = {name: Persona(**options) for name, options in json.loads(args.personas).items()}
    app = OpenAIUpstream(personas)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
