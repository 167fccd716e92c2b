"""``GET /v1/loop/{ns}/{name}`` on both stores: who may read it, a missing policy, and what it counts.

The figures themselves are held to the page in ``tests/browser/test_dashboard.py``; here the API is
checked on its own: reviewers and operators of the namespace read it, an agent may not, another
namespace's reviewer may not, a policy the store does not know is a 404 naming it, and the answer
counts the track's runs, feedback and pairs without carrying any of their text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from controllers.api.identity import Role
from controllers.decisions.loop_summary import summarize
from controllers.gateway import auth
from controllers.store import loop_objects
from controllers.store.db import make_engine
from tests.gateway.conftest import SECRET


def bearer(role: Role, namespace: str = "team") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {auth.issue(SECRET, f'{role.value}-x', 600, role=role, namespaces=[namespace])}"
    }


def write(client: TestClient, method: str, path: str, body: object, key: str) -> None:
    answer = client.request(method, path, json=body, headers={**bearer(Role.ADMIN), "Idempotency-Key": key})
    assert answer.status_code == 200, answer.text


def test_the_loop_is_counted_for_the_track_and_read_by_people_of_its_namespace(client: TestClient) -> None:
    write(client, "PUT", "/v1/policies/team/coder", {"agent": "coder"}, "p")
    signals = {"compileOk": True, "testsPassed": 1, "testsTotal": 2}
    runs = [
        {"agent": agent, "taskId": f"t{i}", "prompt": "SECRET-PROMPT", "output": "o", "signals": signals}
        for i, agent in enumerate(["coder", "coder", "other"])
    ]
    write(client, "POST", "/v1/runs/batch", {"namespace": "team", "runs": runs}, "r")
    pair = {"agent": "coder", "prompt": "SECRET-PROMPT", "chosen": "a", "rejected": "b"}
    write(client, "POST", "/v1/pairs/batch", {"namespace": "team", "pairs": [pair]}, "q")
    for role in (Role.REVIEWER, Role.OPERATOR):
        answer = client.get("/v1/loop/team/coder", headers=bearer(role))
        assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["inflow"]["runs"] == 2  # the track's agent only
    assert body["inflow"]["meanReward"] == 0.75
    assert body["pairs"] == [{"source": "explicit", "pending": 1, "approved": 0, "rejected": 0}]
    assert body["reviewBacklog"] == {"pairs": 1, "annotations": 0}
    assert body["route"] is None
    assert body["experiments"] == []
    assert "SECRET-PROMPT" not in answer.text
    assert client.get("/v1/loop/team/coder", headers=bearer(Role.AGENT)).status_code == 403
    assert client.get("/v1/loop/team/coder", headers=bearer(Role.REVIEWER, "elsewhere")).status_code == 403
    assert client.get("/v1/loop/team/coder").status_code == 401
    missing = client.get("/v1/loop/team/nobody", headers=bearer(Role.REVIEWER))
    assert missing.status_code == 404
    assert "team/nobody" in missing.json()["error"]


def mirror(store_url: str, kind: str, name: str, spec: dict[str, Any], status: dict[str, Any]) -> None:
    """What the operator does just before writing an object's status (``reconcile.loop_mirror``)."""
    summary = summarize(
        kind, {"metadata": {"name": name, "namespace": "team", "uid": f"u-{name}"}, "spec": spec}, status
    )
    assert summary is not None
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        loop_objects.upsert(session, summary, datetime.now(UTC))
    engine.dispose()


def test_the_kubernetes_side_comes_from_the_operators_summaries(client: TestClient, store_url: str) -> None:
    write(client, "PUT", "/v1/policies/team/coder", {"agent": "coder"}, "p")
    before = client.get("/v1/loop/team/coder", headers=bearer(Role.REVIEWER)).json()
    assert (before["trainingRuns"], before["policyStatus"]) == ([], None)
    run_spec = {"policyRef": "coder", "trigger": "NewData", "training": {"method": "DPO"}}
    for name, start in (("coder-0001", "2026-12-01T09:00:00Z"), ("coder-0002", "2026-12-02T09:00:00Z")):
        mirror(store_url, "TrainingRun", name, run_spec, {"attempts": 1, "startTime": start,
               "metrics": {"preferenceAccuracy": 0.75}})  # fmt: skip
    mirror(store_url, "LearningPolicy", "coder", {}, {"champion": {"shadowModel": "coder-0001", "since": "2026-12-01T10:00:00Z"},
           "lineage": [{"shadowModel": "coder-0001", "trainingRun": "coder-0001", "promotedAt": "2026-12-01T10:00:00Z"}]})  # fmt: skip
    mirror(
        store_url,
        "LearningPolicy",
        "other",
        {},
        {"champion": {"shadowModel": "x", "since": "2026-12-01T10:00:00Z"}},
    )
    body = client.get("/v1/loop/team/coder", headers=bearer(Role.REVIEWER)).json()
    assert [run["name"] for run in body["trainingRuns"]] == ["coder-0002", "coder-0001"]  # newest first
    assert body["trainingRuns"][0]["metrics"] == {"preferenceAccuracy": 0.75}
    assert body["trainingRuns"][0]["state"] == "Running"
    assert body["policyStatus"]["champion"] == "coder-0001"
    assert body["policyStatus"]["lineage"][0]["trainingRun"] == "coder-0001"
    elsewhere = client.get("/v1/loop/team/coder", headers=bearer(Role.REVIEWER, "elsewhere"))
    assert elsewhere.status_code == 403  # the summaries are read under the same access as the rest
