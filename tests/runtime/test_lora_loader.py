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

from controllers.clients import lora
from devstack.objectstore import ObjectStore
from devstack.ports import free_port, listen_loopback
from tests.runtime.storage_support import BASE_NAME, upload
from tests.runtime.support import wait_for
from trainer.outputs import sha256_file

Start = Callable[..., str]
TOKEN = "test-loader-token-0123456789abcdef"  # what the Secret <base>-kaizen-loader would hold
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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
                _without_storage_env() | {"KAIZEN_LOADER_TOKEN": TOKEN} | (env or {}),
                tmp_path / "loader.log",
                f"{url}/healthz",
            )
            return url

        yield run


def _listed(url: str) -> dict[str, str]:
    reply = httpx.get(f"{url}/v1/models", headers=AUTH, timeout=10)
    assert reply.status_code == 200, reply.text
    return {card["id"]: card["root"] for card in reply.json()["data"]}


def _load(url: str, name: str, path: str, headers: dict[str, str] = AUTH) -> httpx.Response:
    body = {"lora_name": name, "lora_path": path}
    return httpx.post(f"{url}/v1/load_lora_adapter", json=body, headers=headers, timeout=120)


def _unload(url: str, name: str, headers: dict[str, str] = AUTH) -> httpx.Response:
    return httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": name}, headers=headers, timeout=30)


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

    gone = _unload(loader, "coder-a")
    assert gone.status_code == 200, gone.text
    assert "coder-a" not in _listed(vllm)
    assert not folder.exists()
    missing = _unload(loader, "coder-a")
    assert missing.status_code == 404  # vLLM's answer for a name it does not hold


def test_loads_of_one_name_at_once_download_once_and_load_once(
    start: Start, models: dict[str, Path], object_store: ObjectStore, bucket: str
) -> None:
    loader = start("loader", vllm=start("vllm"), env=object_store.env())
    uri = upload(object_store, models["adapter-b"], f"{bucket}/run-b/adapter")

    async def both() -> list[int]:
        body = {"lora_name": "coder-b", "lora_path": uri}
        async with httpx.AsyncClient(timeout=120, headers=AUTH) as client:
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
    assert httpx.get(f"{loader}/v1/models", headers=AUTH, timeout=10).status_code == 503
    assert _unload(loader, "coder-a").status_code == 503
    assert list((tmp_path / "adapters").iterdir()) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer " + "x" * len(TOKEN)},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"X-Api-Key": TOKEN},
    ],
    ids=["none", "wrong", "longer", "basic", "no-scheme", "other-header"],
)
def test_without_the_operators_token_nothing_is_loaded_listed_or_unloaded(
    start: Start,
    models: dict[str, Path],
    object_store: ObjectStore,
    bucket: str,
    tmp_path: Path,
    headers: dict[str, str],
) -> None:
    vllm = start("vllm")
    loader = start("loader", vllm=vllm, env=object_store.env())
    uri = upload(object_store, models["adapter-a"], f"{bucket}/run-a/adapter")
    assert _load(loader, "coder-a", uri).status_code == 200  # the operator's call

    refused = [
        _load(loader, "coder-b", uri, headers),
        _load(loader, "coder-c", str(models["adapter-b"]), headers),
        _unload(loader, "coder-a", headers),
        httpx.get(f"{loader}/v1/models", headers=headers, timeout=10),
    ]
    assert [r.status_code for r in refused] == [401] * 4
    assert all(r.headers["www-authenticate"] == "Bearer" for r in refused)
    assert all(r.json()["error"]["type"] == "AuthenticationError" for r in refused)
    assert TOKEN not in " ".join(r.text for r in refused)
    assert set(_listed(vllm)) == {BASE_NAME, "coder-a"}  # nothing loaded, nothing unloaded
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == ["coder-a", "coder-a.source"]
    assert httpx.get(f"{loader}/healthz", timeout=10).status_code == 200  # the kubelet's probe has no token


def test_malformed_huge_unframed_and_hostile_bodies_are_refused_and_leave_nothing(
    start: Start, models: dict[str, Path], object_store: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    vllm = start("vllm")
    loader = start("loader", vllm=vllm, env=object_store.env())
    uri = upload(object_store, models["adapter-a"], f"{bucket}/run-a/adapter")
    route = f"{loader}/v1/load_lora_adapter"
    json_headers = AUTH | {"Content-Type": "application/json"}

    assert httpx.post(route, content=b"{not json", headers=json_headers).status_code == 422
    assert httpx.post(route, json={"lora_name": "coder-a"}, headers=AUTH).status_code == 422
    assert httpx.post(route, json={"lora_name": "", "lora_path": uri}, headers=AUTH).status_code == 422
    huge = httpx.post(route, json={"lora_name": "coder-a", "lora_path": uri + "x" * 20_000}, headers=AUTH)
    assert huge.status_code == 413
    unframed = httpx.post(
        route, content=iter([b'{"lora_name": "coder-a", ', b'"lora_path": "x"}']), headers=json_headers
    )
    assert unframed.status_code == 411  # no Content-Length: refused before a byte is read
    for hostile in ("../outside", "..", ".hidden", "a/b", "a\\b", "x" * 300):
        reply = _load(loader, hostile, uri)
        assert reply.status_code in (400, 422), (hostile, reply.text)
    assert set(_listed(vllm)) == {BASE_NAME}
    assert list((tmp_path / "adapters").iterdir()) == []
    assert not (tmp_path / "outside").exists()
    assert _load(loader, "coder-a", uri).status_code == 200  # and it still works


@pytest.mark.parametrize("token", [None, "", "short"])
def test_the_loader_will_not_start_without_a_token_of_sixteen_characters(
    tmp_path: Path, token: str | None
) -> None:
    env = _without_storage_env()
    env.pop("KAIZEN_LOADER_TOKEN", None)
    if token is not None:
        env["KAIZEN_LOADER_TOKEN"] = token
    command = [
        sys.executable, "-m", "controllers.loader", "--vllm", "http://127.0.0.1:9",
        "--listen", f"127.0.0.1:{free_port()}", "--adapters", str(tmp_path / "adapters"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "KAIZEN_LOADER_TOKEN" in done.stderr
    assert "kaizen-loader" in done.stderr  # where the token comes from


def test_the_operator_is_told_to_restart_the_replicas_when_a_loader_holds_another_token(
    start: Start, models: dict[str, Path], object_store: ObjectStore, bucket: str
) -> None:
    loader = start("loader", vllm=start("vllm"), env=object_store.env())
    uri = upload(object_store, models["adapter-a"], f"{bucket}/run-a/adapter")

    async def with_a_new_token() -> list[str]:
        problems = []
        async with httpx.AsyncClient(headers={"Authorization": "Bearer " + "n" * 43}, timeout=30) as http:
            for call in (
                lora.list_models(http, loader),
                lora.load(http, loader, "coder-a", uri),
                lora.unload(http, loader, "coder-a"),
            ):
                with pytest.raises(lora.LoraError) as refused:
                    await call
                problems.append(str(refused.value))
        return problems

    for problem in asyncio.run(with_a_new_token()):
        assert "refused the operator's token (401)" in problem
        assert "restart the base's predictor pods" in problem
