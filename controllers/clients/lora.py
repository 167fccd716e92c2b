"""vLLM's runtime LoRA API on one replica of a shared base: list, load and unload adapters over HTTP.

How the adapter reaches the replica's disk. vLLM's ``lora_path`` is a path on the server's own disk
(or a Hugging Face repo id); vLLM cannot read ``s3://``. Kaizen's answer is a loader beside vLLM in
the predictor pod (``controllers.loader``, placed by ``controllers.builders.loader_sidecar``), as
AIBrix's runtime sidecar does: it answers the same three routes on its own port (``kaizen-loader``,
8090), downloads a ``lora_path`` that is a storage URI into an emptyDir it shares with vLLM, with the
credentials of the storage Secret (as environment) or the pod's ServiceAccount identity, then calls
vLLM's ``/v1/load_lora_adapter`` on localhost with the local path, reporting the URI as the card's
``root``. Chosen over vLLM's LoRA resolver plugins because resolvers load lazily on a request's first
use of a name — nothing the operator can verify before it sends traffic — and need a custom vLLM
image; the loader works with KServe's stock vLLM image. Over mounting a shared volume: no
ReadWriteMany claim is needed on the GPU nodes.

The operator reaches every replica's loader through the headless Service ``<isvc>-kaizen-loader``
it keeps beside each shared base: the ready endpoints of its EndpointSlices, port ``kaizen-loader``
(``controllers.reconcile.lora``). The local stand-in model server answers the three routes itself,
with the same contract, on every port of its "pod".

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


def _refused_token(replica: str, response: httpx.Response) -> None:
    """A 401 means the loader started with another token than the Secret holds now (the Secret was
    deleted and made again): only a restart of the replica gives it the new one."""
    if response.status_code == 401:
        raise LoraError(
            f"the loader on {replica} refused the operator's token (401): it started with the token of an"
            " earlier Secret <base>-kaizen-loader; restart the base's predictor pods"
            " (kubectl rollout restart deployment <base>-predictor)"
        )


async def list_models(client: httpx.AsyncClient, replica: str) -> dict[str, Any]:
    response = await _call(client, "GET", f"{replica}/v1/models")
    _refused_token(replica, response)
    if response.status_code != 200:
        raise LoraError(f"GET {replica}/v1/models answered {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def load(client: httpx.AsyncClient, replica: str, name: str, path: str) -> None:
    body = {"lora_name": name, "lora_path": path}
    response = await _call(client, "POST", f"{replica}/v1/load_lora_adapter", json=body)
    _refused_token(replica, response)
    if response.status_code == 200 or (response.status_code == 400 and "already" in response.text):
        return
    raise LoraError(
        f"loading adapter {name!r} from {path} on {replica} answered {response.status_code}:"
        f" {response.text[:500]}"
    )


async def unload(client: httpx.AsyncClient, replica: str, name: str) -> None:
    response = await _call(client, "POST", f"{replica}/v1/unload_lora_adapter", json={"lora_name": name})
    _refused_token(replica, response)
    if response.status_code in (200, 404):
        return
    raise LoraError(
        f"unloading adapter {name!r} on {replica} answered {response.status_code}: {response.text[:500]}"
    )
