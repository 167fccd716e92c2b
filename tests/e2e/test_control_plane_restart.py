"""The API server and etcd restart while a run is in flight. Nobody touches the operator: its watches
and the Lease recover by themselves, the run in flight finishes and is served, the next trigger
after the restart is acted on, and nothing is made twice."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from devstack.agents import Population
from devstack.demo import demo_policy
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World
from tests.e2e.test_failures import use_fast_trainer


def serving(world: World, name: str) -> bool:
    condition = world.condition("shadowmodel", name)
    return bool(condition and condition["status"] == "True")


def leading(world: World) -> bool:
    url = f"http://127.0.0.1:{world.operator.health_port}/healthz"
    try:
        return bool(httpx.get(url, timeout=5).json()["leading"])
    except httpx.HTTPError:
        return False


def test_the_operator_recovers_by_itself_when_the_api_server_and_etcd_restart(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given a policy trained by hand with the one-second trainer, and its first run in flight
    use_fast_trainer(world, fast_python)
    agent = f"restart-{uuid.uuid4().hex[:6]}"
    world.apply(demo_policy("restart", agent, world.storage, min_pairs=1_000_000))
    assert Population(world.gateway.url, world.token, world.namespace, "r", agent).post_pairs(16, seed=4) > 0
    operator_pid = world.operator.pid
    world.kubectl("annotate", "learningpolicy", "restart", "kaizen.dev/train-now=1")
    world.wait_until("restart-0001 to exist", lambda: world.get("trainingrun", "restart-0001"), timeout=60)
    # When the API server and etcd stop, stay away for five seconds, and come back
    world.plane.restart(down_seconds=5)
    # Then the run in flight finishes and is served, by the same operator process
    world.wait_until("restart-0001 serving", lambda: serving(world, "restart-0001"), timeout=180)
    world.wait_until("the operator to lead again", lambda: leading(world), timeout=60)
    # And a trigger given after the restart is acted on
    world.kubectl("annotate", "learningpolicy", "restart", "kaizen.dev/train-now=2", "--overwrite")
    world.wait_until("restart-0002 serving", lambda: serving(world, "restart-0002"), timeout=180)
    assert world.operator.alive()
    assert world.operator.pid == operator_pid
    assert "Traceback" not in world.operator.log.read_text()  # transient errors are one-line retries
    # With one run per trigger, one RayJob per attempt, one InferenceService per served model
    runs = world.items("trainingruns")
    assert sorted(r["metadata"]["name"] for r in runs) == ["restart-0001", "restart-0002"]
    assert len(world.items("rayjobs")) == sum(r["status"]["attempts"] for r in runs)
    services = sorted(s["metadata"]["name"] for s in world.items("inferenceservices"))
    assert services == ["restart-0001", "restart-0002"], services
