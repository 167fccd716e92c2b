"""Helpers for the runtime tier: the API server as plain HTTP, polling, and the tiny models served."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from devstack.controlplane import ADMIN, ControlPlane
from trainer.tiny import PRESETS, materialize

T = TypeVar("T")
RAYJOBS = "/apis/ray.io/v1/namespaces/{ns}/rayjobs"
ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices"
SECRETS = "/api/v1/namespaces/{ns}/secrets"
SHADOW_MODELS = "/apis/kaizen.dev/v1alpha1/namespaces/{ns}/shadowmodels"


class Cluster:
    """The control plane's API as an admin, over HTTP."""

    def __init__(self, plane: ControlPlane) -> None:
        self.http = httpx.Client(
            base_url=plane.server,
            verify=False,
            headers={"Authorization": f"Bearer {plane.users[ADMIN].token}"},
            timeout=30,
        )

    def create(
        self, collection: str, namespace: str, body: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        params = {"dryRun": "All"} if dry_run else {}
        response = self.http.post(collection.format(ns=namespace), json=body, params=params)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def get(self, collection: str, namespace: str, name: str) -> dict[str, Any] | None:
        response = self.http.get(f"{collection.format(ns=namespace)}/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def replace(self, collection: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.put(f"{collection.format(ns=namespace)}/{body['metadata']['name']}", json=body)
        assert response.status_code == 200, response.text
        replaced: dict[str, Any] = response.json()
        return replaced

    def delete(self, collection: str, namespace: str, name: str) -> None:
        self.http.delete(f"{collection.format(ns=namespace)}/{name}")

    def delete_all(self, namespace: str) -> None:
        for collection in (RAYJOBS, ISVCS):
            self.http.delete(collection.format(ns=namespace))

    def dump(self, namespace: str) -> str:
        parts = []
        for collection in (RAYJOBS, ISVCS):
            response = self.http.get(collection.format(ns=namespace))
            for item in response.json().get("items", []) if response.status_code == 200 else []:
                parts.append(f"{item['kind']} {item['metadata']['name']}: status={item.get('status')}")
        return "\n".join(parts)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120.0, interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port.split("/")[0]))) == 0


def condition(obj: dict[str, Any] | None, kind: str) -> str | None:
    for item in ((obj or {}).get("status") or {}).get("conditions", []):
        if item["type"] == kind:
            return str(item["status"])
    return None


def tiny_base(folder: Path) -> Path:
    return materialize(PRESETS["kaizen-tiny"], folder)


def random_adapter(base: Path, folder: Path, seed: int) -> Path:
    """A LoRA adapter with non-zero weights (PEFT starts B at zero unless told otherwise), so that
    serving it must change the model's outputs."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    config = LoraConfig(
        r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(str(folder))
    return folder
