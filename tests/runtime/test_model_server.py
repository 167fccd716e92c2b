"""The local model server process on its own: vLLM's OpenAI contract where Kaizen relies on it —
both route prefixes, sampling controls, stop strings, streamed completions — and clear 4xx errors
that name the field."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.ports import listen_loopback
from tests.runtime.support import wait_for


@pytest.fixture(scope="module")
def server(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    sock = listen_loopback()
    log = tmp_path_factory.mktemp("model-server") / "server.log"
    command = [
        sys.executable, "-m", "devstack.modelserver", "--base", str(models["base"]),
        "--base-name", "kaizen-tiny", f"--adapter=coder-a={models['adapter-a']}", "--fd", str(sock.fileno()),
        "--max-tokens", "16",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # the server holds its own copy

    def up() -> bool:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("the model server", up, timeout=120)
    yield url
    process.terminate()
    process.wait(30)


def _complete(url: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/completions",
        json={"model": "coder-a", "prompt": "Write add_user in go.\n", **body},
        timeout=60,
    )


def test_both_route_prefixes_serve_the_same_models(server: str) -> None:
    for prefix in ("/v1", "/openai/v1"):
        cards = httpx.get(f"{server}{prefix}/models").json()["data"]
        assert [(card["id"], card["parent"]) for card in cards] == [
            ("kaizen-tiny", None),
            ("coder-a", "kaizen-tiny"),
        ]


def test_greedy_answers_repeat_and_seeded_samples_repeat(server: str) -> None:
    greedy = [_complete(server, temperature=0, max_tokens=8).json()["choices"][0]["text"] for _ in range(2)]
    assert greedy[0] == greedy[1]
    seeded = [
        _complete(server, temperature=1.0, seed=7, max_tokens=8).json()["choices"][0]["text"]
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_generation_is_capped_and_reports_why_it_stopped(server: str) -> None:
    body = _complete(server, temperature=0, max_tokens=1000).json()
    assert body["usage"]["completion_tokens"] == 16, "the server's --max-tokens caps every answer"
    assert body["choices"][0]["finish_reason"] == "length"


def test_a_stop_string_ends_the_answer_before_it(server: str) -> None:
    full = _complete(server, temperature=0, max_tokens=12).json()["choices"][0]["text"]
    stop = full[3:5]
    assert stop, "the answer is long enough to cut"
    cut = _complete(server, temperature=0, max_tokens=12, stop=[stop]).json()["choices"][0]
    assert cut["finish_reason"] == "stop"
    assert cut["text"] == full[: full.index(stop)]


def test_streamed_completions_add_up_to_the_whole_answer(server: str) -> None:
    whole = _complete(server, temperature=0, max_tokens=8).json()["choices"][0]["text"]
    body = {
        "model": "coder-a",
        "prompt": "Write add_user in go.\n",
        "temperature": 0,
        "max_tokens": 8,
        "stream": True,
    }
    with httpx.stream("POST", f"{server}/openai/v1/completions", json=body, timeout=60) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    assert "".join(chunk["choices"][0]["text"] for chunk in chunks) == whole
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "coder-a", "messages": []}, 400, "messages"),
        (
            {"model": "coder-a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
            400,
            "max_tokens",
        ),
        ({"model": "coder-a", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n"),
        (
            {"model": "coder-a", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"},
            400,
            "temperature",
        ),
        ({"messages": [{"role": "user", "content": "hi"}]}, 400, "model"),
        ({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
        ({"model": "coder-a", "messages": [{"role": "user", "content": "word " * 600}]}, 400, "max_tokens"),
    ],
    ids=[
        "no-messages",
        "zero-tokens",
        "several-choices",
        "bad-temperature",
        "no-model",
        "unknown-model",
        "too-long",
    ],
)
def test_bad_requests_get_an_openai_error_naming_the_field(
    server: str, body: dict[str, Any], status: int, param: str
) -> None:
    answer = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["param"] == param
    assert error["code"] == status
    assert error["message"]
