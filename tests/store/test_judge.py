"""LLM-judge pairs through a real HTTP server speaking the OpenAI chat-completions contract.

No judge model can run here, so a small local server stands in for one: it answers the way an
instruction-following judge would (the answer that says "correct" wins) and records what it got.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.clients.judge import JudgeSettings, judge
from controllers.data.judging import parse_verdict, undecided_pairs
from controllers.store import ingest
from controllers.store.db import transaction
from controllers.store.mining import load_attempts
from controllers.store.models import PreferencePair
from tests.store.helpers import run


class _Judge(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        question = body["messages"][-1]["content"]
        a = re.search(r"Answer A:\n(.*?)\n\nAnswer B:", question, re.S)
        verdict = "A" if a and "correct" in a.group(1) else "B"
        if "undecidable" in question:
            verdict = "maybe"
        payload = {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": verdict}}
            ],
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def judge_url() -> Iterator[str]:
    _Judge.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_judge_decides_close_calls_and_its_model_and_rubric_are_recorded(
    factory: sessionmaker[Session], judge_url: str
) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [
                run(
                    f"{t}{v}",
                    f"t{t}",
                    f"{'correct' if v == 'a' else 'sloppy'} answer {t}",
                    prompt=f"task {t} from bob@example.com",
                    compile_ok=True,
                )
                for t in range(6)
                for v in "ab"
            ]
            + [
                run("ua", "u", "first undecidable", compile_ok=True),
                run("ub", "u", "second", compile_ok=True),
            ],
        )
    with transaction(factory) as session:
        attempts, _ = load_attempts(session)
    settings = JudgeSettings(judge_url, "judge-13b", "Prefer correct code.", api_key="secret-key")
    with httpx.Client() as client:
        pairs, unparsed = judge(client, settings, attempts)
    assert unparsed == 1
    assert len(pairs) == 6
    assert all(p.chosen.startswith("correct") and p.rejected.startswith("sloppy") for p in pairs)
    with transaction(factory) as session:
        ingest.insert_pairs(session, [{**p.row(), "created_at": attempts[0].created_at} for p in pairs])
    with transaction(factory) as session:
        stored = session.execute(select(PreferencePair)).scalars().all()
    assert {(p.source, p.judge_model, p.judge_rubric) for p in stored} == {
        ("llmJudge", "judge-13b", "Prefer correct code.")
    }
    # What left the building was scrubbed, authenticated, and shown in both orders across pairs.
    questions = [s["body"]["messages"][-1]["content"] for s in _Judge.seen]
    assert not [q for q in questions if "bob@example.com" in q]
    assert sum("[EMAIL]" in q for q in questions) == 6
    assert {s["auth"] for s in _Judge.seen} == {"Bearer secret-key"}
    firsts = {re.search(r"Answer A:\n(\w+)", q).group(1) for q in questions}  # type: ignore[union-attr]
    assert {"correct", "sloppy"} <= firsts


def test_only_attempts_the_signals_cannot_separate_go_to_the_judge(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [
                run("a", "t", "x", tests_passed=3, tests_total=3),
                run("b", "t", "y", tests_passed=0, tests_total=3),
                run("c", "u", "x", tests_passed=3, tests_total=3),
                run("d", "u", "y", tests_passed=3, tests_total=3),
            ],
        )
    with transaction(factory) as session:
        attempts, _ = load_attempts(session)
    assert [(a.id, b.id) for a, b in undecided_pairs(attempts, 0.2)] == [("c", "d")]


@pytest.mark.parametrize(
    ("text", "verdict"), [("A", "A"), (" b.", "B"), ("**A**", "A"), ("neither", None), ("", None)]
)
def test_verdict_parsing(text: str, verdict: str | None) -> None:
    assert parse_verdict(text) == verdict
