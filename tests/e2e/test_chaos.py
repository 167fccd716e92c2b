"""Chaos: the operator is killed with SIGKILL at random moments through many lifecycles
(TrainingRun → real Ray job → ShadowModel → real model server → Experiment → decision) and restarted
each time. Afterwards: one Ray submission per attempt, one InferenceService per served model, none
left for rolled-back ones, no stuck finalizers, every object converged on its generation.

A person on call acts too: now and then an Abort, a Promote or a Pause (then, a round of traffic later,
its Resume) lands on an experiment in flight (through the CLI's own ``ask``), at a random moment of its
traffic, while the operator keeps dying. Afterwards each request is recorded exactly once, with one
Event, and the decision agrees with its answer: an honoured Abort is the RollBack that names it, an
honoured Promote the Promote that names it, an honoured Pause held the weights and was resumed before
the evidence decided, and a declined one found the experiment already decided.

The trainer is the fastjob stand-in (a real Ray job that publishes a real adapter in a second), so
many lifecycles fit in minutes. ``KAIZEN_CHAOS_LIFECYCLES`` sets how many (CI: 20; `make chaos`: 200).
They run in ``KAIZEN_CHAOS_STREAMS`` policies at once (default 4), each its own chain of
lifecycles: the operator is down for a good part of every kill cycle, and while it is, every stream
waits alike, so streams side by side turn the waiting into work without shortening any step.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from controllers.api import experiment, kinds
from controllers.api.intervention import Action, Intervention
from controllers.api.kindinfo import condition, status_is_current
from controllers.cli.intervene import refusal
from controllers.cli.requests import RequestError, ask
from devstack.agents import Population
from devstack.demo import demo_policy
from devstack.localray import LocalRayHead
from devstack.operator import OperatorProcess
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World
from tests.e2e.test_failures import use_fast_trainer

LIFECYCLES = int(os.environ.get("KAIZEN_CHAOS_LIFECYCLES", "20"))
STREAMS = int(os.environ.get("KAIZEN_CHAOS_STREAMS", "4"))
KAIZEN = "/apis/kaizen.dev/v1alpha1"
INTERVENE = 0.3  # the share of experiments a person acts on
PERSON = "chaos-on-call"
ACTIONS = (Action.PAUSE, Action.ABORT, Action.PROMOTE)  # what a person does to an experiment in flight


@dataclass(frozen=True)
class Asked:
    """A request a person wrote on an experiment in flight."""

    experiment: str
    request: Intervention


def intervene(world: World, rng: random.Random, name: str, action: Action | None = None) -> Asked | None:
    """Abort, promote or pause ``name`` (or the ``action`` given: the resume after a pause) as
    ``kaizen abort|promote|pause|resume`` would, without waiting for the answer; None when the CLI would
    refuse it now (the experiment was decided meanwhile, or the last request is not answered yet)."""
    action = action or ACTIONS[rng.randrange(len(ACTIONS))]
    request = Intervention(
        id=f"chaos-{action.value.lower()}-{name}", action=action, by=PERSON,
        at=datetime.now(UTC).replace(microsecond=0), reason=f"chaos {name}",
    )  # fmt: skip
    held = {Action.PAUSE: {"paused": True}, Action.RESUME: {"paused": False}}.get(action)
    try:
        ask(
            kinds.EXPERIMENTS, world.namespace, name, request, spec=held,
            check=lambda body: refusal(action, experiment.INFO, body), wait=0,
        )  # fmt: skip
    except RequestError:
        return None
    return Asked(name, request)


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


class Reader:
    """Reads Kaizen objects over one kept-alive connection: the streams poll often, and a kubectl
    process per poll would cost more CPU than the operator under test gets."""

    def __init__(self, world: World) -> None:
        self.namespace = world.namespace
        self.client = httpx.Client(
            base_url=world.plane.server, verify=False, timeout=30, headers=world.plane.auth_headers()
        )

    def get(self, plural: str, name: str) -> dict[str, Any]:
        url = f"{KAIZEN}/namespaces/{self.namespace}/{plural}/{name}"
        for attempt in range(
            3
        ):  # a loaded API server may drop a kept-alive connection; a GET is safe to repeat
            try:
                response = self.client.get(url)
                break
            except httpx.TransportError:
                if attempt == 2:
                    raise
        return dict(response.json()) if response.status_code == 200 else {}

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def ready(self, plural: str, name: str) -> bool:
        conditions = (self.get(plural, name).get("status") or {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


Streamed = tuple[dict[str, str], list[Asked]]  # each run's decision, and the requests written


def run_stream(
    world: World, reader: Reader, policy: str, lifecycles: range, tmp_path: Path, stop: threading.Event
) -> Streamed:
    try:
        return _run_stream(world, reader, policy, lifecycles, tmp_path, stop)
    except BaseException as error:
        error.add_note(f"in the chaos stream of policy {policy}")
        raise


def _run_stream(
    world: World, reader: Reader, policy: str, lifecycles: range, tmp_path: Path, stop: threading.Event
) -> Streamed:
    """One policy's chain of lifecycles: train now → serving → experiment → decided by the traffic (or
    by a person: ``intervene``). ``lifecycles`` holds the global numbers of this stream's lifecycles
    (every third one's challenger is better). Returns each run's decision and the requests written."""
    agent = f"{policy}-{uuid.uuid4().hex[:6]}"
    spec = demo_policy(policy, agent, world.storage, min_pairs=1_000_000)
    spec["spec"]["rollout"]["minSamplesPerVariant"] = 20
    # Keep every finished object: the checks afterwards count each run, RayJob and model the streams
    # made (one per attempt, none twice), which the history limits' collection would hide.
    keep = len(lifecycles) + 1
    spec["spec"]["history"] = {
        "succeededRunsLimit": keep,
        "failedRunsLimit": keep,
        "settledExperimentsLimit": keep,
        "retiredModelsLimit": keep,
    }
    world.apply(spec)
    population = Population(world.gateway.url, world.token, world.namespace, policy, agent, seed=1)
    assert population.post_pairs(16, seed=1) > 0
    agents = Population(world.gateway.url, world.token, world.namespace, policy, agent, seed=2)
    decisions: dict[str, str] = {}
    asked: list[Asked] = []
    rng = random.Random(f"{policy}-interventions")
    for k, i in enumerate(lifecycles, start=1):
        if stop.is_set():  # another stream failed: its error is the one to report
            break
        name = f"{policy}-{k:04d}"  # a policy numbers its own runs
        world.kubectl("annotate", "learningpolicy", policy, f"kaizen.dev/train-now={k}", "--overwrite")
        # Generous: every step now goes through the object store (the snapshot's upload, the trainer's
        # read and publish, the model server's download), and an operator killed 1-6 s after it leads
        # may lose a snapshot's upload several times over; what is asserted is no duplicate, no orphan.
        # On two cores shared with other work a one-second Ray job took five minutes here: these are
        # bounds on liveness, not on speed (`make chaos` reports the kills and the decisions).
        world.wait_until(f"{name} serving", lambda n=name: reader.ready("shadowmodels", n), timeout=900)
        world.wait_until(f"experiment {name}", lambda n=name: reader.get("experiments", n), timeout=90)
        champion = (reader.get("learningpolicies", policy).get("status") or {}).get("champion") or {}
        better = i % 3 == 0  # every third challenger wins; the others regress
        pass_rates = {champion.get("shadowModel", "kaizen-tiny"): 0.5, name: 0.95 if better else 0.05}
        deadline = time.monotonic() + 600
        act_at = rng.randrange(3) if rng.random() < INTERVENE else None  # after this many rounds
        paused = False  # a pause was written and its resume is not yet
        for round_ in itertools.count():
            if time.monotonic() >= deadline or stop.is_set():
                break
            if round_ == act_at and (request := intervene(world, rng, name)) is not None:
                asked.append(request)
                paused = request.request.action == Action.PAUSE
            elif paused and (request := intervene(world, rng, name, Action.RESUME)) is not None:
                asked.append(request)  # a round of traffic after the pause (or as soon as it is answered)
                paused = False
            with contextlib.suppress(httpx.HTTPError):  # a route between versions; agents retry
                agents.scripted(20, pass_rates)
            decision = (reader.get("experiments", name).get("status") or {}).get("decision")
            if decision in ("Promote", "RollBack", "Inconclusive"):
                decisions[name] = decision
                break
        assert name in decisions or stop.is_set(), f"{name} undecided after 600s"
    return decisions, asked


def when_the_streams_run_while_the_operator_is_killed_at_random(
    world: World, streams: dict[str, range], tmp_path: Path
) -> tuple[dict[str, str], list[Asked], int]:
    """Every stream's lifecycles, side by side, under the monkey; each run's decision, the requests
    people wrote, and the kills."""
    decisions: dict[str, str] = {}
    asked: list[Asked] = []
    with (
        Reader(world) as reader,
        Monkey(world.operator, seed=3) as monkey,
        ThreadPoolExecutor(STREAMS) as pool,
    ):
        stop = threading.Event()
        futures = [
            pool.submit(run_stream, world, reader, policy, lifecycles, tmp_path, stop)
            for policy, lifecycles in streams.items()
        ]
        wait(futures, return_when=FIRST_EXCEPTION)
        stop.set()  # fail fast: the first failing stream stops the others
        for future in futures:
            decided, requests = future.result()  # raises the first stream's error, if any
            decisions.update(decided)
            asked += requests
    return decisions, asked, monkey.kills


def then_one_rayjob_and_one_ray_submission_per_attempt(
    world: World, ray_head: LocalRayHead
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The TrainingRuns and their RayJobs, once checked."""
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
    return runs, rayjobs


def then_only_serving_models_are_deployed(world: World, streams: dict[str, range]) -> None:
    # The last promotion retires the previous champion a moment before the test gets here; its
    # InferenceService is deleted on that ShadowModel's next pass, so wait for it rather than race it.
    with contextlib.suppress(AssertionError):
        world.wait_until(
            "InferenceServices only for serving models",
            lambda: deployed(world) == serving(world),
            timeout=120,
        )
    assert deployed(world) == serving(world), mismatch(world, streams)  # none for rolled-back or retired


def then_no_orphans_and_the_rolled_back_are_rolled_back(
    world: World, runs: list[dict[str, Any]], rayjobs: list[dict[str, Any]], decisions: dict[str, str]
) -> None:
    children = rayjobs + world.items("inferenceservices") + runs + world.items("shadowmodels")
    assert all(c["metadata"].get("ownerReferences") for c in children), "an object without an owner"
    rolled_back = [n for n, d in decisions.items() if d == "RollBack"]
    assert rolled_back
    for name in rolled_back:
        assert (world.get("shadowmodel", name) or {})["status"]["role"] == "RolledBack"


def test_operator_killed_at_random_through_lifecycles_leaves_no_duplicates_or_orphans(
    world: World,
    runtime: LocalRuntime,
    ray_head: LocalRayHead,
    fast_python: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an operator whose trainer is the one-second stand-in, and STREAMS policies trained by hand
    use_fast_trainer(world, fast_python)
    monkeypatch.setenv("KUBECONFIG", str(world.plane.kubeconfig))  # where the person's requests go
    world.expect_alive = False  # the monkey kills it on purpose
    streams = {
        f"chaos-{chr(ord('a') + s)}": range(s + 1, LIFECYCLES + 1, STREAMS) for s in range(STREAMS)
    }  # lifecycle i belongs to stream (i - 1) % STREAMS: LIFECYCLES in all
    # When lifecycle after lifecycle runs in every stream while the operator is killed at random,
    # and a person aborts, promotes or pauses and resumes some of the experiments in flight
    decisions, asked, kills = when_the_streams_run_while_the_operator_is_killed_at_random(
        world, streams, tmp_path
    )
    assert len(decisions) == LIFECYCLES
    assert kills >= LIFECYCLES // 3, f"only {kills} kills"
    # Then everything converges and nothing was made twice
    world.wait_until("every object converged", lambda: converged(world), timeout=120)
    runs, rayjobs = then_one_rayjob_and_one_ray_submission_per_attempt(world, ray_head)
    then_only_serving_models_are_deployed(world, streams)
    then_no_orphans_and_the_rolled_back_are_rolled_back(world, runs, rayjobs, decisions)
    answers = then_each_request_is_answered_once_and_the_decision_agrees(world, asked)
    print(
        f"\nchaos: {LIFECYCLES} lifecycles in {STREAMS} streams, {kills} operator kills,"
        f" decisions {dict(sorted((d, list(decisions.values()).count(d)) for d in set(decisions.values())))},"
        f" interventions {dict(sorted(answers.items()))}"
    )


ENDS = {Action.ABORT: ("RollBack", "aborted"), Action.PROMOTE: ("Promote", "promoted")}
HONOURED = {Action.PAUSE: "weights held at ", Action.RESUME: "resumed: "}


def then_each_request_is_answered_once_and_the_decision_agrees(
    world: World, asked: list[Asked]
) -> Counter[str]:
    """Every request recorded exactly once with one Event. An honoured Abort or Promote made the
    decision (naming who and why); an honoured Pause held the weights until its Resume, and the decision
    came from the evidence after it; a declined request found the experiment decided. Counts the answers."""
    assert asked, "no request was written: the interventions did not run"
    answers: Counter[str] = Counter()
    named = Counter(e["metadata"]["name"] for e in world.items("events"))
    honoured: set[tuple[str, Action]] = set()
    for one in asked:
        status = (world.get("experiment", one.experiment) or {}).get("status") or {}
        records = [r for r in status.get("interventions") or [] if r["id"] == one.request.id]
        assert len(records) == 1, f"{one.request.id}: {status.get('interventions')}"
        action, outcome, reason = one.request.action, records[0]["outcome"], status["decisionReason"]
        if outcome.startswith("declined"):
            answers[f"{action.value} declined"] += 1
            assert "already decided" in outcome, outcome
            assert not reason.startswith(("aborted by", "promoted by")), reason
        elif action in ENDS:
            answers[f"{action.value} honoured"] += 1
            decision, verb = ENDS[action]
            assert status["decision"] == decision, status
            assert reason == f"{verb} by {PERSON}: chaos {one.experiment}"
        else:
            answers[f"{action.value} honoured"] += 1
            assert outcome.startswith(HONOURED[action]), outcome
            assert not reason.startswith(("aborted by", "promoted by")), reason
            honoured.add((one.experiment, action))
        assert named[f"{one.experiment}.{one.request.id}"] == 1, f"the Event of {one.request.id}"
    for name, action in honoured:  # a paused experiment decides nothing until it is resumed
        assert action != Action.PAUSE or (name, Action.RESUME) in honoured, f"{name} decided while paused"
    return answers


def deployed(world: World) -> list[str]:
    return sorted(s["metadata"]["name"] for s in world.items("inferenceservices"))


def serving(world: World) -> list[str]:
    """Champions and challengers, and any model whose endpoint its policy's route still sends traffic to.

    The second kind is a track that never promoted: its rolled-back challenger's deployment serves
    the plain base model, and stays up until the track's next model takes the route over."""
    routed: dict[str, set[str]] = {}
    names = []
    for shadow in world.items("shadowmodels"):
        status, policy = shadow.get("status") or {}, shadow["spec"].get("policyRef")
        if status.get("role") in ("Champion", "Challenger"):
            names.append(shadow["metadata"]["name"])
            continue
        if policy and policy not in routed:
            routed[policy] = routed_endpoints(world, policy)
        if status.get("endpoint") and status["endpoint"] in routed.get(policy, set()):
            names.append(shadow["metadata"]["name"])
    return sorted(names)


def route(world: World, policy: str) -> httpx.Response:
    return httpx.get(
        f"{world.gateway.url}/v1/routes/{world.namespace}/{policy}",
        headers={"Authorization": f"Bearer {world.token}"},
        timeout=10,
    )


def routed_endpoints(world: World, policy: str) -> set[str]:
    """The endpoints the gateway's route for ``policy`` sends any traffic to."""
    answer = route(world, policy)
    if answer.status_code == 404:
        return set()
    answer.raise_for_status()
    variants = answer.json()["config"]["variants"]
    return {v["endpoint"] for v in variants if v["weight"] > 0}


def mismatch(world: World, policies: Iterable[str]) -> str:
    """Why each model that is deployed but not serving (or the reverse) is so, for the failure message."""
    models = {s["metadata"]["name"]: s for s in world.items("shadowmodels")}
    lines = []
    for name in sorted(set(deployed(world)) ^ set(serving(world))):
        status = (models.get(name) or {}).get("status") or {}
        ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        lines.append(
            f"{name}: role {status.get('role')}, Ready {ready.get('reason')}: {ready.get('message')}"
        )
    for policy in policies:
        lines.append(f"route {policy}: {route(world, policy).text}")
    columns = "NAME:.metadata.name,DECISION:.status.decision,WEIGHTS:.status.variants[*].weight"
    lines.append(world.kubectl("get", "experiments", "-o", f"custom-columns={columns}"))
    return "deployed and serving models differ:\n" + "\n".join(lines)


def converged(world: World) -> bool:
    """Every object caught up with its spec and its people's requests, and every final decision carried
    out. The decision is stored (write-ahead) before its effects: a kill in between leaves a RollBack
    whose challenger is still a Challenger until the restarted operator's next pass finishes it."""
    for kind in ("learningpolicies", "trainingruns", "shadowmodels", "experiments"):
        for obj in world.items(kind):
            if obj["metadata"].get("deletionTimestamp") or not status_is_current(obj):
                return False
            if kind == "experiments" and not decision_carried_out(obj):
                return False
    return True


def decision_carried_out(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("decision") not in experiment.FINAL_DECISIONS:
        return True
    applied = condition(obj, experiment.DECISION_APPLIED)
    return applied.get("status") == "True"
