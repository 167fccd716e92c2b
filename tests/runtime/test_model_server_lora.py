"""The local model server's runtime LoRA routes keep vLLM's contract: load (from a folder or, with its
pod's credentials, from the object store), list, refuse a second load under one name, unload."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.objectstore import ObjectStore
from devstack.ports import listen_loopback
from tests.runtime.storage_support import upload
from tests.runtime.support import wait_for


@pytest.fixture
def server(models: dict[str, Path], object_store: ObjectStore, tmp_path: Path) -> Iterator[str]:
    sock = listen_loopback()
    command = [
        sys.executable, "-m", "devstack.modelserver", "--base", str(models["base"]), "--base-name", "kaizen-tiny",
        "--fd", str(sock.fileno()), "--max-tokens", "4", "--runtime-lora", "--download-dir", str(tmp_path / "dl"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | object_store.env()
    with (tmp_path / "server.log").open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),), env=env
        )
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()

    def up() -> bool:
        assert process.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("the model server", up, timeout=120)
    yield url
    process.terminate()
    process.wait(30)


def _listed(url: str) -> dict[str, str]:
    return {c["id"]: c["root"] for c in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]}


def _complete(url: str, model: str) -> httpx.Response:
    body = {"model": model, "prompt": "def add", "max_tokens": 2, "temperature": 0}
    return httpx.post(f"{url}/v1/completions", json=body, timeout=30)


def test_adapters_load_list_and_unload_while_serving(
    server: str, models: dict[str, Path], object_store: ObjectStore, bucket: str
) -> None:
    assert _complete(server, "coder-a").status_code == 404  # not loaded yet
    local = {"lora_name": "coder-a", "lora_path": str(models["adapter-a"])}
    assert httpx.post(f"{server}/v1/load_lora_adapter", json=local, timeout=60).status_code == 200
    again = httpx.post(f"{server}/v1/load_lora_adapter", json=local, timeout=60)
    assert again.status_code == 400
    assert "already been loaded" in again.text

    uri = upload(object_store, models["adapter-b"], f"{bucket}/run-b/adapter")
    remote = {"lora_name": "coder-b", "lora_path": uri}
    assert httpx.post(f"{server}/v1/load_lora_adapter", json=remote, timeout=60).status_code == 200
    assert _listed(server) == {
        "kaizen-tiny": str(models["base"]),
        "coder-a": str(models["adapter-a"]),
        "coder-b": uri,
    }
    assert _complete(server, "coder-b").status_code == 200
    assert _complete(server, "kaizen-tiny").status_code == 200

    gone = httpx.post(f"{server}/v1/unload_lora_adapter", json={"lora_name": "coder-b"}, timeout=30)
    assert gone.status_code == 200
    missing = httpx.post(f"{server}/v1/unload_lora_adapter", json={"lora_name": "coder-b"}, timeout=30)
    assert missing.status_code == 404
    assert "coder-b" not in _listed(server)
    assert _complete(server, "coder-b").status_code == 404
    assert _complete(server, "coder-a").status_code == 200


def test_an_object_the_store_does_not_have_is_refused_naming_the_uri(server: str, bucket: str) -> None:
    uri = f"{bucket}/no-such-run/adapter"
    reply = httpx.post(
        f"{server}/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": uri}, timeout=60
    )
    assert reply.status_code == 400
    assert uri in reply.json()["error"]["message"]
