"""The story ``kaizen up`` tells on the embedded defaults: the loop turning once to a promotion, then a
deliberately bad adapter rolled back — with live progress, on a tiny model that trains on CPU.

The policy is a real LearningPolicy (the e2e tests apply the same one). What is synthetic is said
plainly: the agents' pass rates per model come from ``Population.work``'s ``quality`` (a tiny model
cannot really solve tasks), so "better" and "worse" adapters are a property of the simulated users.
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
        self.wait(f"{run} trained", lambda: ready(self.kubectl.get("trainingrun", run)).get("status") == "True",
                  900, lambda: self.condition_line("trainingrun", run))  # fmt: skip
        metrics = (self.kubectl.get("trainingrun", run) or {})["status"].get("metrics", {})
        self.say(
            f"  ✓ {run} trained: preference accuracy {metrics.get('preferenceAccuracy')}, {metrics.get('steps')} steps"
        )
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

    def experiment(self, run: str, quality: dict[str, float], rounds: int = 20) -> dict[str, Any]:
        """Agents work in rounds until the Experiment decides; prints the statistics after each round."""
        for _ in range(rounds):
            served = self.agents.work(40, quality)
            exp = self.kubectl.get("experiment", run) or {}
            status = exp.get("status") or {}
            rows = ", ".join(
                f"{v['name']} n={v.get('samples', 0)} mean={v.get('meanReward', 0) or 0:.2f} w={v.get('weight', 0)}%"
                for v in status.get("variants", [])
            )
            self.say(
                f"    served {served} | {rows} | {status.get('decision')}: {status.get('decisionReason', '')[:90]}"
            )
            if status.get("decision") in ("Promote", "RollBack", "Inconclusive"):
                return exp
            time.sleep(1.5)  # the operator reads the store every second
        raise TimeoutError(f"experiment {run} undecided after {rounds} rounds")
