"""The policies and the waiting of the story ``kaizen up`` tells on the embedded defaults (the turns
themselves are ``devstack.loop``'s): live progress while a run trains, a model comes up and an
experiment decides on the agents' traffic.

``demo_policy`` is the small DPO policy on ``tiny://kaizen-tiny`` that the e2e tests of the machinery
apply; ``coder_policy`` is the story's, on ``tiny://kaizen-coder``, a base pre-trained to be imperfect
at the coder task whose answers the checker runs.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.agents import Population
from trainer import tiny

NAMESPACE = "default"
POLICY = "coder"


@dataclass(frozen=True)
class Storage:
    """Where a policy's runs keep their snapshots and adapters (``training.outputUri``) and how the
    operator, the trainer's pods and the model servers reach it (``training.storage``)."""

    output_uri: str
    access: dict[str, Any] = field(default_factory=dict)


def stack_storage(endpoint: str, namespace: str = NAMESPACE) -> Storage:
    """The storage of ``kaizen up``: its bucket, and the Secret and ServiceAccount it made in
    ``namespace`` (``devstack.stack``)."""
    access = {"secretRef": "kaizen-storage", "serviceAccountName": "kaizen-storage", "endpoint": endpoint}
    return Storage(output_uri=f"s3://kaizen/{namespace}", access=access)


def demo_policy(name: str, agent: str, storage: Storage, min_pairs: int) -> dict[str, Any]:
    """A DPO policy for the tiny local model: small batches, ~100 steps, one CPU worker, served
    Dedicated, a one-step 50/50 experiment that decides after 30 rewards per variant."""
    base = tiny.resolve("tiny://kaizen-tiny")
    return {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "LearningPolicy",
        "metadata": {"name": name},
        "spec": {
            "track": {"agent": agent},
            "trigger": {"minNewPairs": min_pairs, "cooldown": "1s"},
            "training": {
                "baseModel": {"name": "kaizen-tiny", "uri": base.as_uri()},
                "method": "DPO",
                "lora": {"rank": 16, "alpha": 32, "dropout": 0.0},
                "hyperparameters": {"epochs": 10, "learningRate": 0.005, "batchSize": 8, "maxLength": 128},
                "scaling": {"submission": "RayJob", "workers": 1, "gpusPerWorker": 0, "cpusPerWorker": 1},
                "outputUri": storage.output_uri,
                "storage": dict(storage.access),
            },
            "gate": {"minPreferenceAccuracy": 0.5, "minRewardMargin": 0.0},
            "serving": {"mode": "Dedicated", "gpus": 0, "cpu": "1", "memory": "2Gi"},
            "rollout": {"steps": [50], "minSamplesPerVariant": 30, "maxDuration": "30m", "guardrails": []},
        },
    }


def coder_policy(name: str, agent: str, storage: Storage, min_pairs: int) -> dict[str, Any]:
    """The story's policy: ``demo_policy`` on ``tiny://kaizen-coder``, DPO with an SFT term on the
    corrected answer (``sftWeight: 1``; plain DPO lowers both answers' likelihood on this base, see
    bench/corrections_lift.py), 5 epochs at 2e-3; experiments tuned to a 15-point difference."""
    policy = demo_policy(name, agent, storage, min_pairs)
    training = policy["spec"]["training"]
    training["baseModel"] = {"name": "kaizen-coder", "uri": tiny.resolve("tiny://kaizen-coder").as_uri()}
    # The agents' models differ by tens of points; a challenger that cannot be 15 points better is not
    # worth its experiment's traffic: it stops Inconclusive (the champion stays) instead of running on.
    policy["spec"]["rollout"]["minDetectableEffect"] = 0.15
    training["hyperparameters"] = {
        "epochs": 5, "learningRate": 0.002, "sftWeight": 1.0, "batchSize": 8, "maxLength": 128,
    }  # fmt: skip
    return policy


@dataclass
class Kubectl:
    kubeconfig: str
    namespace: str = NAMESPACE

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, "-n", self.namespace, *args],
            input=stdin, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self("get", kind, name, "-o", "json")))
        except RuntimeError:
            return None


def ready(obj: dict[str, Any] | None) -> dict[str, Any]:
    for condition in ((obj or {}).get("status") or {}).get("conditions", []):
        if condition["type"] == "Ready":
            return dict(condition)
    return {}


def routed(experiment: dict[str, Any] | None) -> bool:
    """True once the operator has pushed the Experiment's route: every status it writes after the
    route is in place carries the planner's reason; before that it says WaitingForModels (or
    InvalidSpec), and agents calling the policy's route would not reach this experiment yet."""
    reason = ready(experiment).get("reason")
    return bool(reason) and reason not in ("WaitingForModels", "InvalidSpec")


@dataclass
class Story:
    kubectl: Kubectl
    agents: Population
    say: Callable[[str], None]
    timings: dict[str, float] = field(default_factory=dict)

    def wait(
        self, what: str, probe: Callable[[], Any], timeout: float, show: Callable[[], str] | None = None
    ) -> Any:
        started, last = time.monotonic(), ""
        while time.monotonic() - started < timeout:
            value = probe()
            if value:
                self.timings[what] = time.monotonic() - started
                return value
            line = show() if show else ""
            if line and line != last:
                self.say(f"    {line}")
                last = line
            time.sleep(1)
        raise TimeoutError(f"{what}: nothing after {timeout:.0f}s; see `kubectl get kaizen` and the logs")

    def condition_line(self, kind: str, name: str) -> str:
        condition = ready(self.kubectl.get(kind, name))
        if not condition:
            return f"{kind} {name}: created, waiting for the operator's first status"
        return f"{kind} {name}: {condition.get('reason')} — {condition.get('message', '')}"[:160]

    def train_and_serve(self, run: str) -> None:
        self.trained(run)
        self.serve(run)

    def trained(self, run: str) -> None:
        """Wait until ``run`` trained (its adapter passed the offline gate or not) and say how it did."""
        self.wait(f"{run} trained", lambda: ready(self.kubectl.get("trainingrun", run)).get("status") == "True",
                  900, lambda: self.condition_line("trainingrun", run))  # fmt: skip
        status = (self.kubectl.get("trainingrun", run) or {})["status"]
        metrics, rows = status.get("metrics", {}), (status.get("dataset") or {}).get("trainRows")
        self.say(
            f"  ✓ {run} trained on {rows} pairs: preference accuracy {metrics.get('preferenceAccuracy', 0):.2f},"
            f" {metrics.get('steps')} steps ({ready(self.kubectl.get('trainingrun', run)).get('reason')})"
        )

    def serve(self, run: str) -> None:
        """Wait until ``run``'s ShadowModel serves and its Experiment has the route."""
        self.wait(f"{run} serving", lambda: ready(self.kubectl.get("shadowmodel", run)).get("status") == "True",
                  300, lambda: self.condition_line("shadowmodel", run))  # fmt: skip
        endpoint = (self.kubectl.get("shadowmodel", run) or {})["status"].get("endpoint")
        self.say(f"  ✓ ShadowModel {run} serving at {endpoint}")
        self.wait(f"{run} experiment routed", lambda: routed(self.kubectl.get("experiment", run)), 60)

    def taken_down(self, run: str) -> None:
        """Wait until the rolled-back model's InferenceService is gone (the operator removes it once
        no route sends traffic there) and say so."""
        self.wait(f"{run} taken down", lambda: self.kubectl.get("inferenceservice", run) is None, 120,
                  lambda: self.condition_line("shadowmodel", run))  # fmt: skip
        role = ((self.kubectl.get("shadowmodel", run) or {}).get("status") or {}).get("role")
        self.say(f"  ✓ InferenceService {run} removed; ShadowModel {run} stays as the record ({role})")

    def experiment(self, run: str, rounds: int = 80) -> dict[str, Any]:
        """Agents work in rounds (each answer run by the checker) until the Experiment decides; prints
        each round's answers that passed, per model, and the experiment's statistics."""
        for _ in range(rounds):
            worked = self.agents.work(40)
            exp = self.kubectl.get("experiment", run) or {}
            status = exp.get("status") or {}
            passed = ", ".join(f"{m} {worked.passed(m)}/{n}" for m, n in sorted(worked.served.items()))
            rows = ", ".join(
                f"{v['name']} n={v.get('samples', 0)} mean={v.get('meanReward', 0) or 0:.2f} w={v.get('weight', 0)}%"
                for v in status.get("variants", [])
            )
            self.say(f"    passed {passed} | {rows} | {status.get('decision')}")
            if status.get("decision") in ("Promote", "RollBack", "Inconclusive"):
                return exp
            time.sleep(1.5)  # the operator reads the store every second
        raise TimeoutError(f"experiment {run} undecided after {rounds} rounds")
