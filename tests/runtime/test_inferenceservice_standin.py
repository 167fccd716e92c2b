"""The InferenceService stand-in serves each InferenceService with a real model server process.

Given InferenceServices built by the operator's own builder for a tiny base model and LoRA adapters
(created in a real API server with KServe's CRD): each becomes Ready with a URL and KServe's status
fields, answers vLLM's OpenAI-compatible API with the base or an adapter, and goes when it is deleted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from controllers.api.serving_settings import DeploymentMode, ServingSettings
from controllers.api.shadowmodel import AdapterRef, ShadowModelSpec
from controllers.api.training_settings import BaseModelRef
from controllers.builders.inferenceservice import (
    ObjectRef,
    build_inference_service,
    endpoint_url,
)
from controllers.builders.loader_sidecar import loader_secret
from controllers.builders.shared_base import build_shared_base
from devstack.processes import pid_alive
from devstack.runtime import LocalRuntime, endpoints
from tests.runtime.support import ISVCS, SECRETS, SHADOW_MODELS, Cluster, condition, port_open, wait_for
from tests.trainer.upstream import inferenceservice_schema, pruned_fields, schema_errors
from trainer.outputs import sha256_file

BASE_NAME = "kaizen-tiny"
PROMPT = "Write add_user in python.\n"


def _spec(
    models: dict[str, Path], adapter: str, *, shared: str | None = None, base_uri: str | None = None
) -> ShadowModelSpec:
    return ShadowModelSpec(
        policy_ref="coder",
        base_model=BaseModelRef(name=BASE_NAME, uri=base_uri or str(models["base"])),
        adapter=AdapterRef(
            uri=str(models[adapter]), digest=sha256_file(models[adapter] / "adapter_model.safetensors")
        ),
        serving=ServingSettings(
            gpus=0,
            cpu="1",
            memory="2Gi",
            mode=DeploymentMode.SHARED if shared else DeploymentMode.DEDICATED,
            shared_base=shared,
        ),
    )


def _owner(cluster: Cluster, namespace: str, name: str, spec: ShadowModelSpec) -> ObjectRef:
    """The ShadowModel an InferenceService belongs to, created for real: the control plane's garbage
    collector deletes objects whose owner does not exist."""
    body = {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "ShadowModel",
        "metadata": {"name": name},
        "spec": spec.to_wire(),
    }
    return ObjectRef.from_metadata(cluster.create(SHADOW_MODELS, namespace, body)["metadata"])


def _dedicated(cluster: Cluster, namespace: str, name: str, spec: ShadowModelSpec) -> dict[str, Any]:
    return build_inference_service(_owner(cluster, namespace, name, spec), spec)


def _ready(cluster: Cluster, namespace: str, name: str, generation: int = 1) -> dict[str, Any] | None:
    found = cluster.get(ISVCS, namespace, name)
    status = (found or {}).get("status") or {}
    up_to_date = (status.get("modelStatus") or {}).get("transitionStatus") == "UpToDate"
    fresh = status.get("observedGeneration", 0) >= generation
    return found if condition(found, "Ready") == "True" and up_to_date and fresh else None


ENDPOINT_SLICES = "/apis/discovery.k8s.io/v1beta1/namespaces/{ns}/endpointslices"


def _replica_slices(cluster: Cluster, namespace: str, isvc: str) -> list[str]:
    """The names of the EndpointSlices the stand-in published for ``isvc``'s replicas."""
    selector = f"{endpoints.REPLICAS_OF}={isvc}"
    response = cluster.http.get(ENDPOINT_SLICES.format(ns=namespace), params={"labelSelector": selector})
    response.raise_for_status()
    return sorted(item["metadata"]["name"] for item in response.json()["items"])


def _state(runtime: LocalRuntime) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((runtime.state_dir / "state.json").read_text())
    return state


def _chat(base_url: str, model: str, **extra: Any) -> httpx.Response:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 8,
        "temperature": 0,
        **extra,
    }
    return httpx.post(f"{base_url}/chat/completions", json=body, timeout=60)


def _stream(base_url: str, model: str) -> list[dict[str, Any]]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]


@torch.no_grad()
def _next_token_logprobs(models: dict[str, Path], adapter: str | None) -> torch.Tensor:
    """The next-token distribution after PROMPT, computed here with transformers + PEFT directly."""
    tokenizer = AutoTokenizer.from_pretrained(str(models["base"]))
    model: Any = AutoModelForCausalLM.from_pretrained(str(models["base"]))
    if adapter:
        model = PeftModel.from_pretrained(model, str(models[adapter]))
    ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
    return F.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)


def _served_logprobs(base_url: str, model: str) -> dict[str, Any]:
    """The served log-probabilities of the first answer token: the chosen one and the top five, largest
    first (through the chat API, whose top_logprobs is a list; the tiny model has no chat template, so
    the prompt is the message itself)."""
    answer = _chat(base_url, model, max_tokens=1, logprobs=True, top_logprobs=5).json()
    [first] = answer["choices"][0]["logprobs"]["content"]
    return {"chosen": first["logprob"], "top": [item["logprob"] for item in first["top_logprobs"]]}


def test_inference_service_for_a_tiny_model_and_adapter_becomes_ready_and_serves_both(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, models: dict[str, Path]
) -> None:
    manifest = _dedicated(cluster, namespace, "coder-a", _spec(models, "adapter-a"))
    started = time.monotonic()
    cluster.create(ISVCS, namespace, manifest)

    isvc = wait_for("the InferenceService to be Ready", lambda: _ready(cluster, namespace, "coder-a"))
    print(f"\nInferenceService Ready after {time.monotonic() - started:.1f}s")

    status = isvc["status"]
    assert status["url"].startswith("http://127.0.0.1:")
    assert status["address"]["url"] == status["components"]["predictor"]["url"] == status["url"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "IngressReady": "True",
        "PredictorReady": "True",
        "Ready": "True",
    }
    assert status["observedGeneration"] == isvc["metadata"]["generation"]
    assert schema_errors(inferenceservice_schema(), isvc) == []
    assert pruned_fields(inferenceservice_schema(), isvc) == []

    base_url = endpoint_url(status["url"])
    listed = httpx.get(f"{base_url}/models", timeout=10).json()
    assert [card["id"] for card in listed["data"]] == [BASE_NAME, "coder-a"]

    answer = _chat(base_url, "coder-a")
    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "coder-a"
    assert isinstance(body["choices"][0]["message"]["content"], str)
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    chunks = _stream(base_url, "coder-a")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert streamed == body["choices"][0]["message"]["content"], "greedy decoding streams the same answer"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == usage

    missing = _chat(base_url, "no-such-model")
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "model"


def test_the_adapter_is_really_applied_and_the_base_name_serves_the_plain_base(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, models: dict[str, Path]
) -> None:
    cluster.create(ISVCS, namespace, _dedicated(cluster, namespace, "coder-a", _spec(models, "adapter-a")))
    isvc = wait_for("the InferenceService to be Ready", lambda: _ready(cluster, namespace, "coder-a"))
    base_url = endpoint_url(isvc["status"]["url"])

    served = {model: _served_logprobs(base_url, model) for model in (BASE_NAME, "coder-a")}

    for model, adapter in ((BASE_NAME, None), ("coder-a", "adapter-a")):
        expected = _next_token_logprobs(models, adapter)
        top = [float(v) for v in torch.topk(expected, 5).values]
        assert served[model]["top"] == pytest.approx(top, abs=1e-4), model
        assert served[model]["chosen"] == pytest.approx(top[0], abs=1e-4), "greedy picks the likeliest token"
    assert served[BASE_NAME]["top"] != pytest.approx(served["coder-a"]["top"], abs=1e-3)


def test_deleting_the_inference_service_stops_its_server(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, models: dict[str, Path]
) -> None:
    cluster.create(ISVCS, namespace, _dedicated(cluster, namespace, "coder-a", _spec(models, "adapter-a")))
    isvc = wait_for("the InferenceService to be Ready", lambda: _ready(cluster, namespace, "coder-a"))
    [pid] = [i["pid"] for i in _state(runtime)[f"{namespace}/coder-a"]["instances"]]

    cluster.delete(ISVCS, namespace, "coder-a")

    wait_for("the port to close", lambda: not port_open(isvc["status"]["url"]), timeout=30)
    wait_for("the server process to end", lambda: not pid_alive(pid), timeout=30)
    assert f"{namespace}/coder-a" not in _state(runtime)


def test_a_changed_shared_base_predictor_rolls_without_failing_a_request(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, models: dict[str, Path]
) -> None:
    specs = {
        name: _spec(models, f"adapter-{name[-1]}", shared="qwen-base") for name in ("coder-a", "coder-b")
    }
    owners = {name: _owner(cluster, namespace, name, spec) for name, spec in specs.items()}
    one = [(owners["coder-a"], specs["coder-a"])]
    two = [*one, (owners["coder-b"], specs["coder-b"])]
    created = cluster.create(ISVCS, namespace, build_shared_base("qwen-base", namespace, one))
    # As the operator does beside a shared base: its pods wait for the loaders' token.
    cluster.create(SECRETS, namespace, loader_secret(created, "standin-test-token-0123456789"))
    isvc = wait_for("the shared base to be Ready", lambda: _ready(cluster, namespace, "qwen-base"))
    base_url = endpoint_url(isvc["status"]["url"])
    failures: list[str] = []
    served = 0
    done = threading.Event()

    def traffic() -> None:
        nonlocal served
        while not done.is_set():
            try:
                answer = _chat(base_url, BASE_NAME, max_tokens=2)
                if answer.status_code != 200:
                    failures.append(answer.text)
            except httpx.HTTPError as error:
                failures.append(repr(error))
            served += 1

    client = threading.Thread(target=traffic)
    client.start()
    try:
        # Adapters join at run time without touching the spec; a change of sizing rolls the servers.
        bigger = specs["coder-a"].serving.model_copy(update={"max_loras": 8})
        update = build_shared_base("qwen-base", namespace, two, serving=bigger)
        update["metadata"]["resourceVersion"] = (cluster.get(ISVCS, namespace, "qwen-base") or {})[
            "metadata"
        ]["resourceVersion"]
        generation = cluster.replace(ISVCS, namespace, update)["metadata"]["generation"]
        assert generation == created["metadata"]["generation"] + 1
        rolled = wait_for(
            "the new adapter set to serve", lambda: _ready(cluster, namespace, "qwen-base", generation)
        )
    finally:
        done.set()
        client.join()

    assert rolled["status"]["url"] == isvc["status"]["url"], "a rollout keeps the address"
    assert failures == []
    assert served > 0
    assert [card["id"] for card in httpx.get(f"{base_url}/models").json()["data"]] == [BASE_NAME]
    assert len(_state(runtime)[f"{namespace}/qwen-base"]["instances"]) == 1, "the old server is gone"


def test_a_restarted_stand_in_adopts_running_servers_instead_of_starting_more(
    runtime_factory: Any, cluster: Cluster, namespace: str, models: dict[str, Path]
) -> None:
    first = runtime_factory().start()
    cluster.create(ISVCS, namespace, _dedicated(cluster, namespace, "coder-a", _spec(models, "adapter-a")))
    isvc = wait_for("the InferenceService to be Ready", lambda: _ready(cluster, namespace, "coder-a"))
    [before] = _state(first)[f"{namespace}/coder-a"]["instances"]

    first.kill()
    assert pid_alive(before["pid"]), "servers outlive a crashed runtime, as pods outlive their controller"
    # The replica's EndpointSlices are taken away while no runtime runs: the second one publishes
    # them again only from a pass that found coder-a's server healthy, which is what is checked here.
    slices = _replica_slices(cluster, namespace, "coder-a")
    assert slices, "a Ready InferenceService has its replica's EndpointSlices"
    for name in slices:
        cluster.delete(ENDPOINT_SLICES, namespace, name)
    assert _replica_slices(cluster, namespace, "coder-a") == []
    second = runtime_factory().start()
    assert (
        wait_for(
            "the second runtime's pass over coder-a", lambda: _replica_slices(cluster, namespace, "coder-a")
        )
        == slices
    ), "the adopted server keeps its identity, so its slices keep their names"

    [after] = _state(second)[f"{namespace}/coder-a"]["instances"]
    assert after == before
    adopted = wait_for(
        "coder-a Ready under the second runtime", lambda: _ready(cluster, namespace, "coder-a")
    )
    assert adopted["status"]["url"] == isvc["status"]["url"]
    assert _chat(endpoint_url(isvc["status"]["url"]), "coder-a").status_code == 200


def test_a_crashed_server_is_reported_and_started_again(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, models: dict[str, Path]
) -> None:
    cluster.create(ISVCS, namespace, _dedicated(cluster, namespace, "coder-a", _spec(models, "adapter-a")))
    isvc = wait_for("the InferenceService to be Ready", lambda: _ready(cluster, namespace, "coder-a"))
    [crashed] = _state(runtime)[f"{namespace}/coder-a"]["instances"]

    os.kill(crashed["pid"], 9)

    down = wait_for(
        "the crash to be reported",
        lambda: condition(cluster.get(ISVCS, namespace, "coder-a"), "Ready") == "False"
        and cluster.get(ISVCS, namespace, "coder-a"),
    )
    assert down["status"]["modelStatus"]["lastFailureInfo"]["reason"] == "RuntimeUnhealthy"
    again = wait_for("the server to be back", lambda: _ready(cluster, namespace, "coder-a"))
    assert again["status"]["url"] == isvc["status"]["url"]
    [restarted] = _state(runtime)[f"{namespace}/coder-a"]["instances"]
    assert restarted["pid"] != crashed["pid"]


def test_storage_the_local_runtime_cannot_read_is_reported_not_ready_naming_the_uri(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, models: dict[str, Path]
) -> None:
    spec = _spec(models, "adapter-a", base_uri="s3://models/qwen2.5-coder-7b-instruct")
    cluster.create(ISVCS, namespace, _dedicated(cluster, namespace, "coder-s3", spec))

    isvc = wait_for(
        "the failure to be reported",
        lambda: condition(cluster.get(ISVCS, namespace, "coder-s3"), "Ready") == "False"
        and cluster.get(ISVCS, namespace, "coder-s3"),
    )

    failure = isvc["status"]["modelStatus"]["lastFailureInfo"]
    assert failure["reason"] == "ModelLoadFailed"
    assert "s3://models/qwen2.5-coder-7b-instruct" in failure["message"]
    assert "storage-initializer" in failure["message"]  # no credentials: the server never starts
    assert not _state(runtime).get(f"{namespace}/coder-s3", {}).get("instances")
