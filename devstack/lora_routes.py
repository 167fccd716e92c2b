"""vLLM's runtime LoRA routes on the local model server: load and unload adapters while serving.

The contract of vLLM's OpenAI server with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``: ``POST
/v1/load_lora_adapter`` ``{"lora_name", "lora_path"}`` answers 200 with a sentence, 400 when the name
is loaded already (vLLM never reloads in place here); ``POST /v1/unload_lora_adapter``
``{"lora_name"}`` answers 200, or 404 when no adapter has that name. A ``lora_path`` that is an
``s3://`` URI is fetched first with the credentials in the process's environment (its pod's
ServiceAccount's, as Kaizen's loader beside vLLM does in a cluster) into a fresh folder of this
replica; a refusal answers 400 naming the URI and the store's answer.

When the process has ``KAIZEN_LOADER_TOKEN`` (the token the predictor's loader container takes from
its Secret), both routes answer 401 to a call without ``Authorization: Bearer <that token>``, as Kaizen's
loader does: here one process plays vLLM and the loader on one port, and the operator is the only
caller of these routes.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from controllers.loader.app import LoadRequest, UnloadRequest, bearer_matches
from devstack.generation import Engine
from devstack.runtime import storage_init


def _error(status: int, message: str) -> JSONResponse:
    kinds = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError"}
    kind = kinds.get(status, "InternalServerError")
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}}, status)


def _unauthorized(request: Request) -> JSONResponse | None:
    token = os.environ.get("KAIZEN_LOADER_TOKEN")
    if not token:
        return None
    if bearer_matches(request.headers.get("authorization"), token):
        return None
    return _error(401, "a bearer token is required: only the Kaizen operator may load or unload adapters")


def add_lora_routes(app: FastAPI, engine: Engine, download_dir: Path) -> None:
    import s3fs  # type: ignore[import-untyped]  # noqa: F401  # imported now, not on the first load

    gate = asyncio.Lock()  # one load or unload at a time: the checks below and the change agree

    async def load(body: LoadRequest, request: Request) -> object:
        if refused := _unauthorized(request):
            return refused
        async with gate:
            if body.lora_name in engine.paths:
                return _error(400, f"The lora adapter '{body.lora_name}' has already been loaded.")
            path = Path(body.lora_path)
            if storage_init.is_remote(body.lora_path):
                target = download_dir / f"{body.lora_name}-{uuid.uuid4().hex[:8]}"
                env = {key: value for key, value in os.environ.items() if key.startswith("AWS_")}
                try:
                    path = await storage_init.fetch_async(body.lora_path, target, env)
                except storage_init.StorageError as failure:
                    return _error(400, str(failure))
            elif not path.is_dir():
                return _error(400, f"lora_path: no adapter folder at {body.lora_path}")
            try:
                await asyncio.to_thread(engine.load_adapter, body.lora_name, path, body.lora_path)
            except (OSError, ValueError, KeyError) as failure:
                return _error(400, f"lora_path: cannot load {body.lora_path}: {failure}")
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' added successfully.")

    async def unload(body: UnloadRequest, request: Request) -> object:
        if refused := _unauthorized(request):
            return refused
        async with gate:
            if body.lora_name not in engine.adapters:
                return _error(404, f"The lora adapter '{body.lora_name}' cannot be found.")
            await asyncio.to_thread(engine.unload_adapter, body.lora_name)
        return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' removed successfully.")

    app.add_api_route("/v1/load_lora_adapter", load, methods=["POST"])
    app.add_api_route("/v1/unload_lora_adapter", unload, methods=["POST"])
