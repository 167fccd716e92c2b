"""The loader's HTTP routes: vLLM's runtime LoRA contract, with storage URIs it can actually read.

``POST /v1/load_lora_adapter`` downloads a ``lora_path`` that is a storage URI into
``<adapters>/<lora_name>`` and asks vLLM to load that folder; a local path goes to vLLM as it is.
``POST /v1/unload_lora_adapter`` asks vLLM, then deletes the folder. ``GET /v1/models`` is vLLM's list
with each downloaded adapter's ``root`` put back to the URI it came from (the operator compares the
root with the URI it asked for). vLLM's answers pass through with their status; the loader's own
refusals use vLLM's error body: 400 for a URI it cannot download (naming the URI and the problem),
503 when vLLM does not answer. Loads and unloads of one name run one at a time.

Only the operator may call the ``/v1`` routes: each request must carry ``Authorization: Bearer
<token>`` with the token of the Secret ``<isvc>-kaizen-loader`` (``controllers.builders.loader_sidecar``);
anything else is a 401 before the body is read. A body over 16 KiB (a load request is a name and a
URI) is a 413, one without a length a 411. ``/healthz`` is open: the kubelet's probe has no token.

Which URI each folder came from is written beside it (``<name>.source``), so a restarted loader (the
emptyDir outlives the container) still reports the URIs of what vLLM holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import shutil
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from controllers.loader import fetch

log = logging.getLogger("kaizen.loader")
VLLM_TIMEOUT = 120.0  # vLLM loads the adapter's weights before it answers
# A served name becomes a folder name: no separators, nothing hidden (ShadowModel names fit).
_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
MAX_BODY_BYTES = 16 * 1024
OPEN_PATHS = frozenset({"/healthz"})


@dataclass(frozen=True)
class LoaderSettings:
    vllm: str  # vLLM's base URL in this pod, e.g. http://127.0.0.1:8080
    adapters: Path  # the volume shared with vLLM
    token: str  # the operator's bearer token (KAIZEN_LOADER_TOKEN)

    def __post_init__(self) -> None:
        if len(self.token) < 16:
            raise ValueError("the loader's token must have at least 16 characters")


class LoadRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lora_name: str = Field(min_length=1, max_length=253)
    lora_path: str = Field(min_length=1)


class UnloadRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lora_name: str = Field(min_length=1, max_length=253)


_ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    411: "LengthRequiredError",
    413: "RequestTooLargeError",
    503: "ServiceUnavailableError",
}


def error(status: int, message: str) -> JSONResponse:
    body = {"error": {"message": message, "type": _ERROR_TYPES[status], "param": None, "code": status}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status, headers=headers)


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header carries ``token`` as a bearer token (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def refusal(request: Request, token: str) -> JSONResponse | None:
    """Why a request may not reach a route (None when it may): a missing or wrong token, a body
    without a length or over the limit. Checked on the headers, before any of the body is read."""
    # The ASGI path, not request.url (rebuilt from the Host header, which a caller writes).
    if request.scope["path"] in OPEN_PATHS:
        return None
    if not bearer_matches(request.headers.get("authorization"), token):
        return error(401, "a bearer token is required: only the Kaizen operator may load or unload adapters")
    if request.method != "POST":
        return None
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return error(411, "a Content-Length is required")
    if int(length) > MAX_BODY_BYTES:
        return error(
            413, f"the body is larger than {MAX_BODY_BYTES} bytes; a load request is a name and a URI"
        )
    return None


def _passed_on(reply: httpx.Response) -> Response:
    media = reply.headers.get("content-type", "application/json")
    return Response(reply.content, reply.status_code, media_type=media)


class Shelf:
    """The adapters' folders on the shared volume and the URI each was downloaded from."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, name: str) -> Path:
        return self.root / name

    def source(self, name: str) -> str | None:
        record = self.root / f"{name}.source"
        return record.read_text() if record.is_file() and self.folder(name).is_dir() else None

    def record(self, name: str, uri: str) -> None:
        (self.root / f"{name}.source").write_text(uri)

    def remove(self, name: str) -> None:
        (self.root / f"{name}.source").unlink(missing_ok=True)
        shutil.rmtree(self.folder(name), ignore_errors=True)

    def uris_by_path(self) -> dict[str, str]:
        return {str(self.folder(r.stem)): r.read_text() for r in self.root.glob("*.source")}


@dataclass
class Vllm:
    """The vLLM server beside the loader, reached over localhost."""

    url: str
    client: httpx.AsyncClient | None = None

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response | JSONResponse:
        assert self.client is not None, "used inside the app's lifespan"
        try:
            return await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as failure:
            return error(503, f"vLLM at {self.url} did not answer {method} {path}: {failure!r}")

    async def listed(self, name: str) -> bool | Response:
        reply = await self.call("GET", "/v1/models")
        if isinstance(reply, JSONResponse) or reply.status_code != 200:
            return _answer(reply)
        return any(card.get("id") == name for card in reply.json().get("data") or [])


async def load_from_storage(vllm: Vllm, shelf: Shelf, name: str, uri: str) -> Response:
    """Download ``uri`` onto the shelf unless it is there, then hand vLLM the local folder."""
    present = await vllm.listed(name)
    if isinstance(present, Response):
        return present
    if present:  # vLLM's own answer, without downloading anything
        return error(400, f"The lora adapter '{name}' has already been loaded.")
    if shelf.source(name) != uri:
        try:
            files = await asyncio.to_thread(fetch.download, uri, shelf.folder(name))
        except fetch.FetchError as failure:
            log.warning("adapter %s: %s", name, failure)
            return error(400, str(failure))
        shelf.record(name, uri)
        log.info("adapter %s: downloaded %d files from %s", name, len(files), uri)
    local = {"lora_name": name, "lora_path": str(shelf.folder(name))}
    reply = await vllm.call("POST", "/v1/load_lora_adapter", json=local)
    if reply.status_code != 200:  # vLLM refused the folder: nothing stays on disk
        shelf.remove(name)
    return _answer(reply)


def create_app(settings: LoaderSettings) -> FastAPI:
    shelf = Shelf(settings.adapters)
    locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    vllm = Vllm(settings.vllm)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        settings.adapters.mkdir(parents=True, exist_ok=True)
        fetch.clear_scratch(settings.adapters)
        async with httpx.AsyncClient(base_url=settings.vllm, timeout=VLLM_TIMEOUT) as client:
            vllm.client = client
            yield

    app = FastAPI(
        title="Kaizen LoRA loader", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        return refusal(request, settings.token) or await call_next(request)

    @app.post("/v1/load_lora_adapter")
    async def load(body: LoadRequest) -> Response:
        name, path = body.lora_name, body.lora_path
        if not fetch.is_storage_uri(path):
            return _answer(await vllm.call("POST", "/v1/load_lora_adapter", json=body.model_dump()))
        if not _FOLDER_NAME.match(name):
            return error(400, f"lora_name {name!r}: letters, digits, '.', '_' and '-' only")
        async with locks[name]:
            return await load_from_storage(vllm, shelf, name, path)

    @app.post("/v1/unload_lora_adapter")
    async def unload(body: UnloadRequest) -> Response:
        async with locks[body.lora_name]:
            reply = await vllm.call("POST", "/v1/unload_lora_adapter", json=body.model_dump())
            if reply.status_code in (200, 404) and _FOLDER_NAME.match(body.lora_name):
                shelf.remove(body.lora_name)
            return _answer(reply)

    @app.get("/v1/models")
    async def models() -> Response:
        reply = await vllm.call("GET", "/v1/models")
        if isinstance(reply, JSONResponse) or reply.status_code != 200:
            return _answer(reply)
        listing = reply.json()
        uris = shelf.uris_by_path()
        for card in listing.get("data") or []:
            card["root"] = uris.get(str(card.get("root")), card.get("root"))
        return JSONResponse(listing)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}  # the loader's own liveness: vLLM restarting is no reason to restart it

    return app


def _answer(reply: httpx.Response | JSONResponse) -> Response:
    return reply if isinstance(reply, JSONResponse) else _passed_on(reply)
