"""Which replicas of a shared base must load or unload an adapter: pure functions of what they list.

A shared base's replicas are found the way a Service finds its pods: the EndpointSlices of the
predictor's Service (``kubernetes.io/service-name: <isvc>-predictor``, KServe's RawDeployment naming),
ready endpoints only — a replica that is not ready takes no traffic, and is looked at again when it is.
(EndpointSlices rather than core v1 Endpoints: those are deprecated since Kubernetes 1.33.)

Each replica answers vLLM's ``GET /v1/models``: the base, and one card per loaded adapter whose ``root``
is the path it was loaded from. An adapter is in place on a replica when its served name is listed with
the storage URI of this adapter version. A name listed with another URI is an older version under the
same name: it is unloaded first and the new one loaded under a fresh LoRA id, never reloaded in place
(vLLM's prefix cache keys blocks by LoRA id, and an in-place reload keeps the id: stale blocks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PREDICTOR_SUFFIX = "-predictor"
HTTP_PORT_NAME = "http"


def predictor_service(inference_service: str) -> str:
    """The Service in front of an InferenceService's predictor pods (RawDeployment mode)."""
    return inference_service + PREDICTOR_SUFFIX


def replica_urls(slices: Iterable[Mapping[str, Any]], port_name: str = HTTP_PORT_NAME) -> list[str]:
    """``http://address:port`` of every ready endpoint in a Service's EndpointSlices, on the port
    named ``port_name`` (or an unnamed one: a Service with a single port)."""
    urls = set()
    for found in slices:
        ports = [p for p in found.get("ports") or [] if p.get("name") in (port_name, "", None)]
        if not ports or found.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
            continue
        port = ports[0]["port"]
        for endpoint in found.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                host = f"[{address}]" if ":" in address else address
                urls.add(f"http://{host}:{port}")
    return sorted(urls)


def loaded_adapters(models: Mapping[str, Any], base_name: str) -> dict[str, str]:
    """Served name -> root of each adapter in a ``/v1/models`` answer (the base left out)."""
    return {
        str(card["id"]): str(card.get("root") or "")
        for card in models.get("data") or []
        if card.get("id") != base_name
    }


@dataclass(frozen=True)
class AdapterPlan:
    """For one adapter on one shared base: which replicas unload the name first, which load it, and
    whether every replica already lists this version."""

    unload: tuple[str, ...]
    load: tuple[str, ...]

    @property
    def in_place(self) -> bool:
        return not self.unload and not self.load


def plan_adapter(listings: Mapping[str, Mapping[str, str]], name: str, uri: str) -> AdapterPlan:
    """``listings``: replica URL -> its loaded adapters (``loaded_adapters``)."""
    unload = tuple(sorted(r for r, loaded in listings.items() if name in loaded and loaded[name] != uri))
    load = tuple(sorted(r for r, loaded in listings.items() if loaded.get(name) != uri))
    return AdapterPlan(unload, load)


def plan_removal(listings: Mapping[str, Mapping[str, str]], name: str) -> tuple[str, ...]:
    """The replicas that still list ``name`` (to unload it from)."""
    return tuple(sorted(r for r, loaded in listings.items() if name in loaded))
