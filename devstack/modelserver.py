"""A local model server with the HTTP contract of vLLM's OpenAI-compatible server, for what Kaizen uses.

The local runtime starts one per InferenceService (never part of the operator image). It serves a
base model and its LoRA adapters (transformers + PEFT on CPU) on ``/v1/...`` as vLLM does and on
``/openai/v1/...`` as KServe's huggingface server does: ``GET models``, ``POST completions`` and
``POST chat/completions``, streamed as server-sent events or not, the ``model`` field choosing the base
or an adapter, with token usage. Errors use OpenAI's error body with a 4xx status naming the field.

Its public socket can be handed over already listening (``--fd``): the supervisor holds it, so a
replacement (new adapter set) accepts from the same socket before the old server stops, as a rolling
update keeps a Service's address, and no other process can take the port meanwhile. The supervisor
checks this very instance's health on a private Unix socket (``--admin-socket``).

``python -m devstack.modelserver --base DIR --base-name NAME [--adapter NAME=DIR ...]
(--port P | --fd N) [--pod-fd N] [--admin-socket PATH] [--instance ID] [--max-tokens N]
[--runtime-lora --download-dir DIR]``

With ``--runtime-lora`` (what ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` turns on in vLLM) it also
answers vLLM's ``POST /v1/load_lora_adapter`` ``{"lora_name", "lora_path"}`` and ``POST
/v1/unload_lora_adapter`` ``{"lora_name"}``, with vLLM's answers (200; 400 for a name already loaded;
404 for one that is not). ``lora_path`` may be a local folder or an ``s3://`` URI: the stand-in plays
vLLM and Kaizen's loader beside it in one process (``controllers.clients.lora``), fetching the URI
with the credentials in its environment — its pod's ServiceAccount's — into a fresh folder under
``--download-dir``; ``/v1/models`` then lists the adapter with the URI as its ``root``. ``--pod-fd`` is
this replica's own listening socket (its pod address), beside the shared one of its Service.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from devstack.generation import Engine, GenerationError, Sampling, Step
from devstack.lora_routes import add_lora_routes
from devstack.openai_reply import Reply
from devstack.ports import listen_loopback

PREFIXES = ("/v1", "/openai/v1")  # vLLM's routes, and KServe's huggingface server's


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None


class CompletionRequest(_Request):
    prompt: str | list[str]
    logprobs: int | None = Field(default=None, ge=0, le=20)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str = Field(min_length=1)
    content: str | list[dict[str, Any]]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class ChatRequest(_Request):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)


def error(status: int, message: str, param: str | None = None) -> JSONResponse:
    kind = {400: "BadRequestError", 404: "NotFoundError"}.get(status, "InternalServerError")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}}, status)


def create_app(engine: Engine, *, instance: str, max_tokens: int) -> FastAPI:
    app = FastAPI(title="kaizen local model server")
    created = int(time.time())

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"] if p != "body")
        return error(400, f"{field}: {first['msg']}", field)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "instance": instance, "models": engine.models}

    async def models() -> dict[str, Any]:
        cards = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": engine.roots[name],
                "parent": None if name == engine.base_name else engine.base_name,
                "max_model_len": engine.max_model_len,
            }
            for name in engine.models
        ]
        return {"object": "list", "data": cards}

    async def completions(body: CompletionRequest) -> Any:
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if len(prompts) != 1:
            return error(400, "prompt: one prompt per request is supported", "prompt")
        return await _respond(engine, body, prompts[0], chat=False, cap=max_tokens)

    async def chat(body: ChatRequest) -> Any:
        prompt = engine.chat_prompt([{"role": m.role, "content": m.text()} for m in body.messages])
        return await _respond(engine, body, prompt, chat=True, cap=max_tokens)

    for prefix in PREFIXES:
        app.add_api_route(f"{prefix}/models", models, methods=["GET"])
        app.add_api_route(f"{prefix}/completions", completions, methods=["POST"])
        app.add_api_route(f"{prefix}/chat/completions", chat, methods=["POST"])
    return app


async def _respond(
    engine: Engine, body: CompletionRequest | ChatRequest, prompt: str, *, chat: bool, cap: int
) -> Any:
    if body.model not in engine.paths:
        return error(404, f"The model `{body.model}` does not exist.", "model")
    wanted = (body.max_completion_tokens if isinstance(body, ChatRequest) else None) or body.max_tokens
    if isinstance(body, ChatRequest):
        top = (body.top_logprobs or 0) if body.logprobs else 0
        want_logprobs = body.logprobs
    else:
        top, want_logprobs = body.logprobs or 0, body.logprobs is not None
    sampling = Sampling(
        max_tokens=min(wanted or cap, cap),
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=[body.stop] if isinstance(body.stop, str) else list(body.stop or []),
        top_logprobs=top,
    )
    ids = engine.encode(prompt)
    try:  # before answering 200: a stream cannot turn into a 400 later
        engine.check(body.model, ids, sampling)
    except GenerationError as failure:
        return error(400, str(failure), failure.param)
    reply = Reply(body.model, chat, len(ids), want_logprobs)
    events = _in_thread(engine.generate(body.model, ids, sampling))
    if body.stream:
        usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(reply.stream(events, usage), media_type="text/event-stream")
    return await reply.whole(events)


async def _in_thread(steps: Generator[Step]) -> AsyncIterator[Step]:
    """Runs the generation in a worker thread and hands its steps to the event loop as they come;
    a client that goes away stops the generation at its next token."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Step | BaseException | None] = asyncio.Queue()
    cancelled = threading.Event()

    def work() -> None:
        try:
            for step in steps:
                if cancelled.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, step)
        except BaseException as failure:  # handed to the event loop, which re-raises it
            loop.call_soon_threadsafe(queue.put_nowait, failure)
        finally:
            steps.close()
            loop.call_soon_threadsafe(queue.put_nowait, None)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancelled.set()


def _admin(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(16)
    return sock


class DrainingServer(uvicorn.Server):
    """uvicorn, and SIGUSR1 stops taking new connections on the public socket (health checks go on).

    The stand-in's version of a pod leaving its Service's endpoints before it gets SIGTERM: the
    supervisor drains an instance first, so that a connection the kernel hands this process in the
    instant before it shuts down is never closed unread (a client would see "connection reset"); the
    instance that replaces it accepts on the same socket meanwhile. In-flight requests finish under
    uvicorn's graceful shutdown on the SIGTERM that follows."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self._drain)

    def _drain(self) -> None:
        for listener in self.servers:
            if any(sock.family != socket.AF_UNIX for sock in listener.sockets):
                listener.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.modelserver")
    parser.add_argument("--base", type=Path, required=True, help="Hugging Face folder of the base model")
    parser.add_argument("--base-name", required=True, help="the model name that selects the base")
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR", help="a LoRA adapter")
    public = parser.add_mutually_exclusive_group(required=True)
    public.add_argument("--port", type=int, help="listen on this loopback port")
    public.add_argument("--fd", type=int, help="accept on this inherited, listening socket")
    parser.add_argument("--pod-fd", type=int, help="also accept on this inherited socket (the replica's own)")
    parser.add_argument("--runtime-lora", action="store_true", help="answer vLLM's LoRA load/unload routes")
    parser.add_argument("--download-dir", type=Path, help="where adapters loaded from object storage go")
    parser.add_argument("--admin-socket", type=Path, help="also answer on this Unix socket (health checks)")
    parser.add_argument("--instance", default=uuid.uuid4().hex)
    parser.add_argument("--max-tokens", type=int, default=64, help="cap on generated tokens per request")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    adapters = dict(item.split("=", 1) for item in args.adapter)
    engine = Engine(args.base, args.base_name, {name: Path(path) for name, path in adapters.items()})
    app = create_app(engine, instance=args.instance, max_tokens=args.max_tokens)
    if args.runtime_lora:
        add_lora_routes(app, engine, args.download_dir or Path.cwd() / "adapters")
    # Accepting only now that the model is loaded: a loading server never takes a connection.
    sockets = [socket.socket(fileno=args.fd) if args.fd is not None else listen_loopback(args.port)]
    if args.pod_fd is not None:
        sockets.append(socket.socket(fileno=args.pod_fd))
    if args.admin_socket:
        sockets.append(_admin(args.admin_socket))
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=30)
    try:
        DrainingServer(config).run(sockets=sockets)
    finally:
        if args.admin_socket:
            args.admin_socket.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
