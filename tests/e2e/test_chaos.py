"""Chaos: the operator is killed with SIGKILL at random moments through many lifecycles
(TrainingRun → real Ray job → ShadowModel → real model server → Experiment → decision) and restarted
each time. Afterwards: one Ray submission per attempt, one InferenceService per served model, none
left for rolled-back ones, no stuck finalizers, every object converged on its generation.

The trainer is the fastjob stand-in (a real Ray job that publishes a real adapter in a second), so
many lifecycles fit in minutes. ``KAIZEN_CHAOS_LIFECYCLES`` sets how many (CI: 30; `make chaos`: 200).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import uuid
from pathlib import Path

import httpx

from controllers.local.agents import Population
from controllers.local.demo import demo_policy
from controllers.local.operator import OperatorProcess
from controllers.local.runtime import LocalRuntime
from tests.e2e.conftest import World
from trainer.localray import LocalRayHead

LIFECYCLES = int(os.environ.get("KAIZEN_CHAOS_LIFECYCLES", "30"))


class Monkey:
    """Kills the operator at random intervals and starts it again at once, until stopped."""

    def __init__(self, operator: OperatorProcess, seed: int, low: float = 1.0, high: float = 6.0) -> None:
        self.operator, self.rng, self.low, self.high = operator, random.Random(seed), low, high
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # Kill a random time after the operator leads again (not after it was started): on a loaded
        # machine start-up plus the Lease hand-over can outlast a short interval, and an operator
        # killed before it ever leads would make no progress at all — a livelock, not a test.
        while not self._stop.is_set():
            self._wait_leading()
            if self._stop.wait(self.rng.uniform(self.low, self.high)):
                return
            self.operator.kill()
            self.kills += 1
            self.operator.start()

    def _wait_leading(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(httpx.HTTPError, KeyError):
                url = f"http://127.0.0.1:{self.operator.health_port}/healthz"
                if httpx.get(url, timeout=2).json()["leading"]:
                    return
            time.sleep(0.2)

    def __enter__(self) -> Monkey:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if not self.operator.alive():
            self.operator.start()


def test_operator_killed_at_random_through_lifecycles_leaves_no_duplicates_or_orphans(
    world: World, runtime: LocalRuntime, ray_head: LocalRayHead, fast_python: Path, tmp_path: Path
) -> None:
    # Given an operator whose trainer is the one-second stand-in, and a policy trained by hand
    world.operator.stop()
    world.operator.python = str(fast_python)
    world.operator.start()
    world.expect_alive = False  # the monkey kills it on purpose
    agent = f"chaos-{uuid.uuid4().hex[:6]}"
    policy = demo_policy("chaos", agent, tmp_path, min_pairs=1_000_000)
    policy["spec"]["rollout"]["minSamplesPerVariant"] = 10
    world.apply(policy)
    assert (
        Population(world.gateway.url, world.token, world.namespace, "chaos", agent).post_pairs(16, seed=1) > 0
    )
    agents = Population(world.gateway.url, world.token, world.namespace, "chaos", agent, seed=2)
    decisions: dict[str, str] = {}
    # When lifecycle after lifecycle runs while the operator is killed at random
    with Monkey(world.operator, seed=3) as monkey:
        for i in range(1, LIFECYCLES + 1):
            name = f"chaos-{i:04d}"
            world.kubectl("annotate", "learningpolicy", "chaos", f"kaizen.dev/train-now={i}", "--overwrite")
            world.wait_until(
                f"{name} serving",
                lambda n=name: (c := world.condition("shadowmodel", n)) and c["status"] == "True",
                timeout=180,
            )
            world.wait_until(f"experiment {name}", lambda n=name: world.get("experiment", n), timeout=60)
            champion = ((world.get("learningpolicy", "chaos") or {}).get("status") or {}).get(
                "champion"
            ) or {}
            better = i % 3 == 0  # every third challenger wins; the others regress
            quality = {champion.get("shadowModel", "kaizen-tiny"): 0.5, name: 0.95 if better else 0.05}
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):  # a route between versions; agents retry
                    agents.work(20, quality)
                exp = world.get("experiment", name) or {}
                decision = (exp.get("status") or {}).get("decision")
                if decision in ("Promote", "RollBack", "Inconclusive"):
                    decisions[name] = decision
                    break
            assert name in decisions, f"{name} undecided after 240s"
    assert monkey.kills >= LIFECYCLES // 3, f"only {monkey.kills} kills"
    # Then everything converges and nothing was made twice
    world.wait_until("every object converged", lambda: converged(world), timeout=120)
    runs = world.items("trainingruns")
    rayjobs = world.items("rayjobs")
    assert len(runs) == LIFECYCLES
    assert len(rayjobs) == sum(r["status"]["attempts"] for r in runs)  # one RayJob per attempt
    submissions = [j["status"].get("jobId") for j in rayjobs]
    assert len(set(submissions)) == len(submissions)
    ray_jobs = httpx.get(
        f"{ray_head.dashboard_url}/api/jobs/", headers=ray_head.auth_headers, timeout=30
    ).json()
    ids = [
        j.get("submission_id")
        for j in ray_jobs
        if str(j.get("submission_id", "")).startswith("kaizen-chaos-")
    ]
    assert len(ids) == len(set(ids)) == len(rayjobs), "a submission reached Ray twice"
    # The last promotion retires the previous champion a moment before the test gets here; its
    # InferenceService is deleted on that ShadowModel's next pass, so wait for it rather than race it.
    with contextlib.suppress(AssertionError):
        world.wait_until(
            "InferenceServices only for serving models", lambda: deployed(world) == serving(world)
        )
    assert deployed(world) == serving(world), mismatch(world)  # none for rolled-back or retired models
    rolled_back = [n for n, d in decisions.items() if d == "RollBack"]
    assert rolled_back
    for name in rolled_back:
        assert (world.get("shadowmodel", name) or {})["status"]["role"] == "RolledBack"
    print(
        f"\nchaos: {LIFECYCLES} lifecycles, {monkey.kills} operator kills, decisions {sorted(set(decisions.values()))}"
    )


def deployed(world: World) -> list[str]:
    return sorted(s["metadata"]["name"] for s in world.items("inferenceservices"))


def serving(world: World) -> list[str]:
    return sorted(
        s["metadata"]["name"]
        for s in world.items("shadowmodels")
        if (s.get("status") or {}).get("role") in ("Champion", "Challenger")
    )


def mismatch(world: World) -> str:
    """Why each model that is deployed but not serving (or the reverse) is so, for the failure message."""
    models = {s["metadata"]["name"]: s for s in world.items("shadowmodels")}
    lines = []
    for name in sorted(set(deployed(world)) ^ set(serving(world))):
        status = (models.get(name) or {}).get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        lines.append(
            f"{name}: role {status.get('role')}, Ready {ready.get('reason')}: {ready.get('message')}"
        )
    routes = world.kubectl(
        "get",
        "experiments",
        "-o",
        "custom-columns=NAME:.metadata.name,DECISION:.status.decision,WEIGHTS:.status.variants[*].weight",
    )
    route = httpx.get(
        f"{world.gateway.url}/v1/routes/{world.namespace}/chaos",
        headers={"Authorization": f"Bearer {world.token}"},
        timeout=10,
    ).text
    return "deployed and serving differ:\n" + "\n".join(lines) + f"\nroute: {route}\nexperiments:\n{routes}"


def converged(world: World) -> bool:
    for kind in ("learningpolicies", "trainingruns", "shadowmodels", "experiments"):
        for obj in world.items(kind):
            meta, status = obj["metadata"], obj.get("status") or {}
            if meta.get("deletionTimestamp") or status.get("observedGeneration") != meta.get("generation"):
                return False
    return True
