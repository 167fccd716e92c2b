"""The LearningPolicy reconcile mines its track: a real API server (the policy as the server stores
it) and the real store (PostgreSQL and SQLite). The operator stand-in and the track builders here are
shared with the LLM judge's tests (test_llm_judge.py)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.learningpolicy import LearningPolicy
from controllers.clients.router import RouterClient
from controllers.reconcile import mining, policies
from controllers.reconcile.deps import Dependencies, Settings
from controllers.runtime.kube import Kube, load_configuration
from controllers.runtime.metrics import OperatorMetrics
from controllers.store import ingest
from controllers.store.db import transaction
from devstack.controlplane import ControlPlane
from tests.store.helpers import run


@dataclass
class Operator:
    """The policy reconcile as the operator calls it, with the status it wrote fed back in."""

    plane: ControlPlane
    namespace: str
    deps: Dependencies
    events: list[tuple[str, str, str]] = field(default_factory=list)
    status: dict[str, Any] | None = None

    async def reconcile(self, name: str) -> dict[str, Any]:
        got = self.plane.kubectl("get", "learningpolicy", name, "-n", self.namespace, "-o", "json")
        body = json.loads(got.stdout)
        body["status"] = self.status
        outcome = await policies.reconcile(body, LearningPolicy.model_validate(body), self.deps)
        self.events += outcome.events
        self.status = outcome.status.to_wire()
        return self.status


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def operator_for(
    plane: ControlPlane, namespace: str, engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> Operator:
    settings = Settings(
        database_url=str(engine.url), data_root=tmp_path, gateway_url="http://127.0.0.1:9",
        judge_calls_per_reconcile=2, judge_timeout_seconds=5,
    )  # fmt: skip
    deps = Dependencies(
        settings,
        Kube(load_configuration(str(plane.kubeconfig))),
        engine,
        factory,
        RouterClient(settings.gateway_url, ""),
        OperatorMetrics(),
    )
    return Operator(plane, namespace, deps)


async def close(operator: Operator) -> None:
    await operator.deps.kube.close()
    await operator.deps.router.close()


def close_calls(factory: sessionmaker[Session], namespace: str, agent: str, tasks: int) -> None:
    """``tasks`` tasks in ``namespace``, each with two attempts the signals cannot tell apart, and one
    clear reward gap."""
    runs = [
        run(
            f"{agent}-{t}{v}",
            f"t{t}",
            f"{'correct' if v == 'a' else 'sloppy'} {t}",
            agent=agent,
            compile_ok=True,
        )
        for t in range(tasks)
        for v in "ab"
    ]
    runs += [
        run(f"{agent}-good", "gap", "good", agent=agent, ok=True),
        run(f"{agent}-bad", "gap", "bad", agent=agent, ok=False, attempt=2),
    ]
    with transaction(factory) as session:
        ingest.insert_runs(session, runs, namespace)


def given_busy_tracks_asked_to_train_now(
    plane: ControlPlane, namespace: str, factory: sessionmaker[Session], names: tuple[str, ...]
) -> dict[str, str]:
    """One track per name with two close calls and a reward gap, and its policy annotated train-now."""
    agents = {name: f"{name}-{uuid.uuid4().hex[:6]}" for name in names}
    for name, agent in agents.items():
        close_calls(factory, namespace, agent, tasks=2)
        policy = {
            "apiVersion": "kaizen.dev/v1alpha1",
            "kind": "LearningPolicy",
            "metadata": {"name": name, "annotations": {"kaizen.dev/train-now": "1"}},
            "spec": {
                "track": {"agent": agent},
                "trigger": {"minNewPairs": 1_000_000},
                "training": {"baseModel": {"name": "tiny", "uri": "file:///models/tiny"}},
            },
        }
        plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(policy))
    return agents


@dataclass
class MiningWatch:
    """Wraps ``mining.mine``: notes whether the policy's first run existed when it mined, and how
    many minings ran at once."""

    plane: ControlPlane
    namespace: str
    agents: dict[str, str]
    in_flight: int = 0
    most: int = 0
    runs_seen: list[tuple[str, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_mine = mining.mine

        def watched_mine(policy: LearningPolicy, *args: Any) -> Any:
            name = next(n for n, agent in self.agents.items() if agent == policy.spec.track.agent)
            got = self.plane.kubectl("get", "trainingrun", f"{name}-0001", "-n", self.namespace, check=False)
            self.runs_seen.append((name, got.returncode == 0))
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            try:
                time.sleep(0.3)  # long enough for a second mining to start beside it, were it allowed
                return real_mine(policy, *args)
            finally:
                with self.lock:
                    self.in_flight -= 1

        monkeypatch.setattr(mining, "mine", watched_mine)


def when_the_policies_are_reconciled_at_once_by_one_operator(
    start_operator: Callable[[], Operator], names: list[str]
) -> list[dict[str, Any]]:
    async def scenario() -> list[dict[str, Any]]:
        operator = start_operator()

        async def reconcile(name: str) -> dict[str, Any]:
            got = operator.plane.kubectl("get", "lp", name, "-n", operator.namespace, "-o", "json")
            body = json.loads(got.stdout)
            outcome = await policies.reconcile(body, LearningPolicy.model_validate(body), operator.deps)
            return outcome.status.to_wire()

        try:
            return await asyncio.gather(*(reconcile(name) for name in names))
        finally:
            await close(operator)

    return asyncio.run(scenario())


def test_a_train_now_starts_its_run_before_mining_and_minings_never_overlap(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given two busy tracks, and a person asking one of their policies to train now
    agents = given_busy_tracks_asked_to_train_now(control_plane, namespace, factory, ("busy-a", "busy-b"))
    watch = MiningWatch(control_plane, namespace, agents)
    watch.install(monkeypatch)

    # When both policies are reconciled at once, by one operator
    statuses = when_the_policies_are_reconciled_at_once_by_one_operator(
        lambda: operator_for(control_plane, namespace, engine, factory, tmp_path), list(agents)
    )

    # Then each run existed before its policy mined, both tracks were mined, one at a time,
    # and the status shows what the mining found
    assert sorted(watch.runs_seen) == [("busy-a", True), ("busy-b", True)]
    assert watch.most == 1
    for status in statuses:
        assert status["lastTrainingRun"].endswith("-0001")
        assert status["data"]["pairsBySource"] == {"rewardGap": 1}
        assert condition(status, "Mining")["status"] == "True"
