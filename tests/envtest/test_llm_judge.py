"""The LearningPolicy reconcile asks an LLM judge about the close calls its mining finds: a real API
server (the judge's Secret, the policy as the server stores it), the real store (PostgreSQL and SQLite)
and a real HTTP server speaking the OpenAI chat-completions contract that counts the questions it is
asked. Each question is asked once, only changed tasks are mined again, and a failing judge says why."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from controllers.store import ingest
from controllers.store.db import transaction
from controllers.store.mining import REREAD
from controllers.store.models import Policy, Run
from devstack.controlplane import ControlPlane
from tests.envtest.test_policy_mining import Operator, close, close_calls, condition, operator_for
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


def apply_policy(plane: ControlPlane, namespace: str, agent: str, judge_url: str, output: Path) -> None:
    """The judged policy; its runs' outputs in a local folder (the operator checks it can write there)."""
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
            "training": {
                "baseModel": {"name": "tiny", "uri": "file:///models/tiny"},
                "outputUri": output.as_uri(),
            },
        },
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(policy))


def judged_track(
    plane: ControlPlane,
    namespace: str,
    factory: sessionmaker[Session],
    agent: str,
    judge_url: str,
    output: Path,
) -> None:
    """Three close calls and a reward gap on ``agent``'s track, and a policy whose judge's key is in a Secret."""
    close_calls(factory, namespace, agent, tasks=3)
    plane.kubectl("create", "secret", "generic", "judge", "--from-literal=token=s3cret", "-n", namespace)
    apply_policy(plane, namespace, agent, judge_url, output)


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
    judged_track(control_plane, namespace, factory, agent, judge_url, tmp_path / "runs")

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
    judged_track(control_plane, namespace, factory, agent, judge_url, tmp_path / "runs")

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
        judged = (Policy.namespace == namespace, Policy.name == "judged")
        session.execute(update(Policy).where(*judged).values(mined_through=an_hour_ago))
    # When a new close call arrives and the operator restarts (its memory of the track is gone)
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [
                run(f"{agent}-newa", "new", "correct new", agent=agent, compile_ok=True),
                run(f"{agent}-newb", "new", "sloppy new", agent=agent, compile_ok=True),
            ],
            namespace,
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
    close_calls(factory, namespace, agent, tasks=1)
    apply_policy(control_plane, namespace, agent, judge_url, tmp_path / "runs")

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
