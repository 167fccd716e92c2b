"""``GET /v1/loop/{ns}/{name}`` on both stores: who may read it, a missing policy, and what it counts.

The figures themselves are held to the page in ``tests/browser/test_dashboard.py``; here the API is
checked on its own: reviewers and operators of the namespace read it, an agent may not, another
namespace's reviewer may not, a policy the store does not know is a 404 naming it, and the answer
counts the track's runs, feedback and pairs without carrying any of their text.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from controllers.api.identity import Role
from controllers.gateway import auth
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
