"""vLLM's runtime LoRA API on one replica of a shared base: list, load and unload adapters over HTTP.

How the adapter reaches the replica's disk. vLLM's ``lora_path`` is a path on the server's own disk
(or a Hugging Face repo id); vLLM cannot read ``s3://``. Kaizen's answer is a loader beside vLLM in
the predictor pod, as AIBrix's runtime sidecar does: it answers the same three routes, downloads a
``lora_path`` that is a storage URI into the pod's own volume with the pod's ServiceAccount credentials
(the ones KServe's storage initializer uses), then calls vLLM's ``/v1/load_lora_adapter`` on
localhost with the local path, reporting the URI as the card's ``root``. Chosen over vLLM's LoRA
resolver plugins because resolvers load lazily on a request's first use of a name — nothing the
operator can verify before it sends traffic — and need a custom vLLM image; the loader works with
KServe's stock vLLM image and keeps the credentials where the storage initializer's are. Over
mounting a shared volume: no ReadWriteMany claim is needed on the GPU nodes. The local stand-in
model server answers the three routes itself, with the same contract.

Not built yet: the loader container itself and its place in the shared base's predictor
(``predictor.containers`` beside ``model``, an emptyDir for adapters, its port). Until then the
operator calls the port the predictor Service's EndpointSlices name ``http``, which in the stand-in is
the model server that plays both parts, and in a cluster would reach vLLM itself with a storage URI it
cannot read; the loader's port is to be taken from the slices (a port it names) once it exists.

Every call is retried a few times on connection errors and 5xx (a replica busy loading, or restarting
under its Service); a 4xx is an answer, never retried. Loading a name that is loaded already answers
400 in vLLM; unloading one that is not answers 404: both count as done, so a repeated pass is harmless.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

ATTEMPTS = 3
RETRY_DELAY = 0.2  # seconds, doubled per attempt


class LoraError(RuntimeError):
    """A replica that did not do what was asked; the message names the replica and its answer."""


async def _call(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    delay, last = RETRY_DELAY, ""
    for attempt in range(ATTEMPTS):
        try:
            response = await client.request(method, url, **kwargs)
            if response.status_code < 500:
                return response
            last = f"HTTP {response.status_code}: {response.text[:300]}"
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"
        if attempt + 1 < ATTEMPTS:
            await asyncio.sleep(delay)
            delay *= 2
    raise LoraError(f"{method} {url} failed {ATTEMPTS} times; last: {last}")


async def list_models(client: httpx.AsyncClient, replica: str) -> dict[str, Any]:
    response = await _call(client, "GET", f"{replica}/v1/models")
    if response.status_code != 200:
        raise LoraError(f"GET {replica}/v1/models answered {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def load(client: httpx.AsyncClient, replica: str, name: str, path: str) -> None:
    body = {"lora_name": name, "lora_path": path}
    response = await _call(client, "POST", f"{replica}/v1/load_lora_adapter", json=body)
    if response.status_code == 200 or (response.status_code == 400 and "already" in response.text):
        return
    raise LoraError(
        f"loading adapter {name!r} from {path} on {replica} answered {response.status_code}:"
        f" {response.text[:500]}"
    )


async def unload(client: httpx.AsyncClient, replica: str, name: str) -> None:
    response = await _call(client, "POST", f"{replica}/v1/unload_lora_adapter", json={"lora_name": name})
    if response.status_code in (200, 404):
        return
    raise LoraError(
        f"unloading adapter {name!r} on {replica} answered {response.status_code}: {response.text[:500]}"
    )
