"""The LearningPolicy reconcile mines its track and asks an LLM judge: a real API server (the judge's
Secret, the policy as the server stores it), the real store (PostgreSQL and SQLite) and a real HTTP
server speaking the OpenAI chat-completions contract that counts the questions it is asked."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.learningpolicy import LearningPolicy
from controllers.clients.router import RouterClient
from controllers.reconcile import mining, policies
from controllers.reconcile.deps import Dependencies, Settings
from controllers.runtime.kube import Kube, load_configuration
from controllers.runtime.metrics import OperatorMetrics
from controllers.store import ingest
from controllers.store.db import transaction
from controllers.store.mining import REREAD
from controllers.store.models import Policy, Run
from devstack.controlplane import ControlPlane
from tests.store.helpers import run


class JudgeServer(BaseHTTPRequestHandler):
    """An instruction-following judge: the answer that says "correct" wins. ``status`` other than 200
    makes it fail the way a provider outage does."""

    calls: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if type(self).status != 200:
            self._send(
                type(self).status, {"error": {"message": "upstream overloaded", "type": "server_error"}}
            )
            return
        question = body["messages"][-1]["content"]
        a = re.search(r"Answer A:\n(.*?)\n\nAnswer B:", question, re.S)
        verdict = "A" if a and "correct" in a.group(1) else "B"
        message = {"role": "assistant", "content": verdict}
        self._send(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            },
        )

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def judge_url() -> Iterator[str]:
    JudgeServer.calls, JudgeServer.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), JudgeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


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


def apply_policy(plane: ControlPlane, namespace: str, agent: str, judge_url: str) -> None:
    policy = {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "LearningPolicy",
        "metadata": {"name": "judged"},
        "spec": {
            "track": {"agent": agent},
            "pairSources": {
                "llmJudge": {
                    "enabled": True,
                    "endpoint": judge_url,
                    "model": "judge-13b",
                    "apiKeySecretRef": {"name": "judge", "key": "token"},
                }
            },
            "trigger": {"minNewPairs": 1_000_000},
            "training": {"baseModel": {"name": "tiny", "uri": "file:///models/tiny"}},
        },
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(policy))


def close_calls(factory: sessionmaker[Session], agent: str, tasks: int) -> None:
    """``tasks`` tasks, each with two attempts the signals cannot tell apart, and one clear reward gap."""
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
        ingest.insert_runs(session, runs)


def judged_track(
    plane: ControlPlane, namespace: str, factory: sessionmaker[Session], agent: str, judge_url: str
) -> None:
    """Three close calls and a reward gap on ``agent``'s track, and a policy whose judge's key is in a Secret."""
    close_calls(factory, agent, tasks=3)
    plane.kubectl("create", "secret", "generic", "judge", "--from-literal=token=s3cret", "-n", namespace)
    apply_policy(plane, namespace, agent, judge_url)


def test_the_judge_is_asked_each_question_once_across_reconciles_and_restarts(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    judge_url: str,
    tmp_path: Path,
) -> None:
    # Given three close calls and a reward gap, and a policy whose judge's key is in a Secret
    agent = f"judged-{uuid.uuid4().hex[:6]}"
    judged_track(control_plane, namespace, factory, agent, judge_url)

    async def scenario() -> None:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            # When the policy is reconciled: at most two questions per reconcile
            status = await operator.reconcile("judged")
            assert len(JudgeServer.calls) == 2
            assert status["data"]["pairsBySource"] == {"rewardGap": 1, "llmJudge": 2}
            assert "1 comparisons wait" in condition(status, "Mining")["message"]
            assert ("Normal", "PairsMined", "3 new pairs (llmJudge 2, rewardGap 1)") in operator.events
            status = await operator.reconcile("judged")
            assert len(JudgeServer.calls) == 3
            assert status["data"]["pairsBySource"] == {"rewardGap": 1, "llmJudge": 3}
            assert status["data"]["approvedPairs"] == 4
            # Then, nothing new having arrived, the next reconciles ask nothing
            await operator.reconcile("judged")
            await operator.reconcile("judged")
            assert len(JudgeServer.calls) == 3
        finally:
            await close(operator)
        # and neither does an operator that restarted (it mines again, but finds every verdict stored)
        restarted = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            status = await restarted.reconcile("judged")
            assert len(JudgeServer.calls) == 3
            assert status["data"]["pairsBySource"] == {"rewardGap": 1, "llmJudge": 3}
            assert [e for e in restarted.events if e[1] == "PairsMined"] == []
            assert condition(status, "Mining")["status"] == "True"
        finally:
            await close(restarted)

    asyncio.run(scenario())
    # The judge got the key from the Secret, and picked the right answers
    assert {c["auth"] for c in JudgeServer.calls} == {"Bearer s3cret"}
    assert {c["path"] for c in JudgeServer.calls} == {"/v1/chat/completions"}
    assert {c["body"]["model"] for c in JudgeServer.calls} == {"judge-13b"}


def test_a_restarted_operator_mines_only_the_tasks_changed_since_the_last_mining(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    judge_url: str,
    tmp_path: Path,
) -> None:
    # Given a policy that mined its track's four tasks, an hour ago
    agent = f"resumed-{uuid.uuid4().hex[:6]}"
    judged_track(control_plane, namespace, factory, agent, judge_url)

    async def mine_all() -> dict[str, Any]:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            await operator.reconcile("judged")
            return await operator.reconcile("judged")  # the judge's backlog answered
        finally:
            await close(operator)

    status = asyncio.run(mine_all())
    assert "pairs found in the last 30d" in condition(status, "Mining")["message"]
    assert len(JudgeServer.calls) == 3
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with transaction(factory) as session:  # its runs last changed well before the mining
        session.execute(update(Run).where(Run.agent == agent).values(changed_at=an_hour_ago - 2 * REREAD))
        key = f"{namespace}.judged"
        session.execute(update(Policy).where(Policy.name == key).values(mined_through=an_hour_ago))
    # When a new close call arrives and the operator restarts (its memory of the track is gone)
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [
                run(f"{agent}-newa", "new", "correct new", agent=agent, compile_ok=True),
                run(f"{agent}-newb", "new", "sloppy new", agent=agent, compile_ok=True),
            ],
        )

    async def restarted() -> tuple[dict[str, Any], Operator]:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            return await operator.reconcile("judged"), operator
        finally:
            await close(operator)

    status, operator = asyncio.run(restarted())
    # Then it mines the one task that changed, not the window, and the judge hears only of that one
    assert "pairs found in 1 tasks changed since the last mining" in condition(status, "Mining")["message"]
    assert len(JudgeServer.calls) == 4
    assert "correct new" in json.dumps(JudgeServer.calls[-1]["body"])
    assert status["data"]["pairsBySource"] == {"rewardGap": 1, "llmJudge": 4}
    assert ("Normal", "PairsMined", "1 new pairs (llmJudge 1)") in operator.events


def test_a_failing_judge_leaves_the_reconcile_successful_and_says_why(
    control_plane: ControlPlane,
    namespace: str,
    engine: Engine,
    factory: sessionmaker[Session],
    judge_url: str,
    tmp_path: Path,
) -> None:
    # Given a close call and a reward gap, a policy with a judge, and no Secret for its key yet
    agent = f"failing-{uuid.uuid4().hex[:6]}"
    close_calls(factory, agent, tasks=1)
    apply_policy(control_plane, namespace, agent, judge_url)

    async def scenario() -> None:
        operator = operator_for(control_plane, namespace, engine, factory, tmp_path)
        try:
            # When the key cannot be read: the other sources still count, the reason is shown
            status = await operator.reconcile("judged")
            mining = condition(status, "Mining")
            assert (mining["status"], mining["reason"]) == ("False", "JudgeFailed")
            assert "no Secret judge" in mining["message"]
            assert condition(status, "Ready")["status"] == "True"
            assert status["data"]["pairsBySource"] == {"rewardGap": 1}
            assert JudgeServer.calls == []
            # When the Secret exists but the judge answers 500
            control_plane.kubectl(
                "create", "secret", "generic", "judge", "--from-literal=token=k", "-n", namespace
            )
            JudgeServer.status = 500
            status = await operator.reconcile("judged")
            mining = condition(status, "Mining")
            assert (mining["status"], mining["reason"]) == ("False", "JudgeFailed")
            assert f"the LLM judge at {judge_url} failed: 500" in mining["message"]
            assert "upstream overloaded" in mining["message"]
            assert condition(status, "Ready")["status"] == "True"
            assert len(JudgeServer.calls) == 1
            # Then each poll retries it, with one Warning Event for the whole outage
            await operator.reconcile("judged")
            assert len(JudgeServer.calls) == 2
            failures = [e for e in operator.events if e[1] == "JudgeFailed"]
            assert [e[0] for e in failures] == ["Warning"]
            assert "no Secret judge" in failures[0][2]
            # and once the judge is back, its verdict is stored and the condition recovers
            JudgeServer.status = 200
            status = await operator.reconcile("judged")
            assert len(JudgeServer.calls) == 3
            assert condition(status, "Mining")["status"] == "True"
            assert status["data"]["pairsBySource"] == {"rewardGap": 1, "llmJudge": 1}
            await operator.reconcile("judged")
            assert len(JudgeServer.calls) == 3
        finally:
            await close(operator)

    asyncio.run(scenario())


def given_busy_tracks_asked_to_train_now(
    plane: ControlPlane, namespace: str, factory: sessionmaker[Session], names: tuple[str, ...]
) -> dict[str, str]:
    """One track per name with two close calls and a reward gap, and its policy annotated train-now."""
    agents = {name: f"{name}-{uuid.uuid4().hex[:6]}" for name in names}
    for name, agent in agents.items():
        close_calls(factory, agent, tasks=2)
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
