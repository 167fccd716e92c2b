"""The LoRA loader beside vLLM: storage URIs downloaded with the pod's credentials, vLLM's contract kept.

The upstream "vLLM" is the local model server process (``devstack.modelserver``, runtime LoRA on,
no storage credentials of its own: it can load only local folders, as vLLM can); the store is the real
S3-protocol server with authentication on. The loader runs as its own process, as in the pod.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from devstack.objectstore import ObjectStore
from devstack.ports import free_port, listen_loopback
from tests.runtime.storage_support import BASE_NAME, upload
from tests.runtime.support import wait_for
from trainer.outputs import sha256_file

Start = Callable[..., str]


def _without_storage_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def _spawn(
    stack: ExitStack, command: list[str], env: dict[str, str], log: Path, url: str, **kw: object
) -> None:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, **kw)  # type: ignore[call-overload]
    stack.callback(process.wait, 30)
    stack.callback(process.terminate)

    def up() -> bool:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(f"{command[2]} at {url}", up, timeout=120)


@pytest.fixture
def start(models: dict[str, Path], tmp_path: Path) -> Iterator[Start]:
    """``start("vllm")`` starts the stand-in vLLM; ``start("loader", vllm=URL, env=...)`` a loader."""
    with ExitStack() as stack:

        def run(kind: str, vllm: str = "", env: dict[str, str] | None = None) -> str:
            if kind == "vllm":
                sock = listen_loopback()
                url = f"http://127.0.0.1:{sock.getsockname()[1]}"
                command = [
                    sys.executable, "-m", "devstack.modelserver", "--base", str(models["base"]),
                    "--base-name", BASE_NAME, "--fd", str(sock.fileno()), "--max-tokens", "4",
                    "--runtime-lora", "--download-dir", str(tmp_path / "vllm-downloads"),
                ]  # fmt: skip
                _spawn(stack, command, _without_storage_env(), tmp_path / "vllm.log", f"{url}/health",
                       pass_fds=(sock.fileno(),))  # fmt: skip
                sock.close()
                return url
            url = f"http://127.0.0.1:{free_port()}"
            command = [
                sys.executable, "-m", "controllers.loader", "--vllm", vllm,
                "--listen", url.removeprefix("http://"), "--adapters", str(tmp_path / "adapters"),
            ]  # fmt: skip
            _spawn(
                stack,
                command,
                _without_storage_env() | (env or {}),
                tmp_path / "loader.log",
                f"{url}/healthz",
            )
            return url

        yield run


def _listed(url: str) -> dict[str, str]:
    reply = httpx.get(f"{url}/v1/models", timeout=10)
    assert reply.status_code == 200, reply.text
    return {card["id"]: card["root"] for card in reply.json()["data"]}


def _load(url: str, name: str, path: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path}, timeout=120)


def test_an_adapter_in_the_store_is_downloaded_loaded_listed_by_its_uri_and_unloaded(
    start: Start, models: dict[str, Path], object_store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    vllm = start("vllm")
    loader = start("loader", vllm=vllm, env=object_store.env())
    uri = upload(object_store, models["adapter-a"], f"{bucket}/run-a/adapter")

    assert _load(loader, "coder-a", uri).status_code == 200
    folder = tmp_path / "adapters" / "coder-a"
    assert _listed(vllm)["coder-a"] == str(folder)  # vLLM itself read the local copy
    assert _listed(loader) == {BASE_NAME: str(models["base"]), "coder-a": uri}
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in models["adapter-a"].iterdir())
    weights = "adapter_model.safetensors"
    assert sha256_file(folder / weights) == sha256_file(models["adapter-a"] / weights)

    again = _load(loader, "coder-a", uri)
    assert again.status_code == 400
    assert "already been loaded" in again.text  # vLLM's own answer, passed on

    local = _load(loader, "coder-b", str(models["adapter-b"]))  # a local path goes through as it is
    assert local.status_code == 200, local.text
    assert _listed(loader)["coder-b"] == str(models["adapter-b"])

    gone = httpx.post(f"{loader}/v1/unload_lora_adapter", json={"lora_name": "coder-a"}, timeout=30)
    assert gone.status_code == 200, gone.text
    assert "coder-a" not in _listed(vllm)
    assert not folder.exists()
    missing = httpx.post(f"{loader}/v1/unload_lora_adapter", json={"lora_name": "coder-a"}, timeout=30)
    assert missing.status_code == 404  # vLLM's answer for a name it does not hold


def test_loads_of_one_name_at_once_download_once_and_load_once(
    start: Start, models: dict[str, Path], object_store: ObjectStore, bucket: str
) -> None:
    loader = start("loader", vllm=start("vllm"), env=object_store.env())
    uri = upload(object_store, models["adapter-b"], f"{bucket}/run-b/adapter")

    async def both() -> list[int]:
        body = {"lora_name": "coder-b", "lora_path": uri}
        async with httpx.AsyncClient(timeout=120) as client:
            replies = await asyncio.gather(
                *(client.post(f"{loader}/v1/load_lora_adapter", json=body) for _ in range(2))
            )
        return sorted(reply.status_code for reply in replies)

    assert asyncio.run(both()) == [200, 400]
    assert _listed(loader)["coder-b"] == uri


def test_a_wrong_key_is_refused_naming_the_uri_and_leaves_nothing(
    start: Start, models: dict[str, Path], object_store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    vllm = start("vllm")
    loader = start("loader", vllm=vllm, env=object_store.env() | {"AWS_SECRET_ACCESS_KEY": "wrong" * 8})
    uri = upload(object_store, models["adapter-a"], f"{bucket}/run-a/adapter")

    refused = _load(loader, "coder-a", uri)
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert uri in message
    assert "403" in message
    assert "wrong" not in refused.text  # no credential in the answer
    assert "coder-a" not in _listed(vllm)
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == []  # no half folder
    absent = _load(loader, "coder-a", f"{bucket}/no-such-run/adapter")
    assert absent.status_code == 400
    assert "no-such-run" in absent.json()["error"]["message"]


def test_vllm_down_is_a_503_and_nothing_is_downloaded(
    start: Start, models: dict[str, Path], object_store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    loader = start("loader", vllm=f"http://127.0.0.1:{free_port()}", env=object_store.env())
    uri = upload(object_store, models["adapter-a"], f"{bucket}/run-a/adapter")

    assert _load(loader, "coder-a", uri).status_code == 503
    assert httpx.get(f"{loader}/v1/models", timeout=10).status_code == 503
    unload = httpx.post(f"{loader}/v1/unload_lora_adapter", json={"lora_name": "coder-a"}, timeout=30)
    assert unload.status_code == 503
    assert list((tmp_path / "adapters").iterdir()) == []
