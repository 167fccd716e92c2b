"""The widget's cross-origin door stays shut where nobody opened it, and its public token stays harmless.

The security world's gateway runs with the default settings (no ``KAIZEN_WIDGET_ORIGINS``): no origin,
however it is spelled, gets a CORS answer on any path; the feedback token's huge and malformed bodies
are refused as anyone's are, and write nothing. (With origins configured, ``tests/gateway/
test_widget_gateway.py`` and ``tests/browser/test_widget.py`` check the door opens for them alone.)
"""

from __future__ import annotations

import httpx
import pytest

from tests.security.gateway_world import NAMESPACE, World
from tests.security.test_body_limits import send_huge

ORIGINS = ["https://app.example.com", "null", "http://127.0.0.1", "https://evil.example", "*", "a" * 4000]
PATHS = [
    "/v1/feedback/batch",
    "/v1/runs/batch",
    "/v1/review/queue",
    "/ui/sign-in",
    "/widget/kaizen-feedback.js",
]


@pytest.mark.parametrize("origin", ORIGINS, ids=lambda value: value[:24])
def test_no_origin_gets_a_cors_answer_from_a_gateway_that_lists_none(
    security_world: World, origin: str
) -> None:
    for path in PATHS:
        headers = {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        }
        answer = httpx.options(f"{security_world.gateway.url}{path}", headers=headers, timeout=30)
        assert answer.status_code < 500, f"{path}: {answer.status_code}"
        assert not any(name.startswith("access-control-") for name in answer.headers), (
            f"{path}: {answer.headers}"
        )
        posted = security_world.call(
            "POST", path, "feedback", {"namespace": NAMESPACE, "feedback": [{"runId": "seed-run", "thumbs": 1}]},
            Origin=origin, **{"Idempotency-Key": security_world.unique("origin")},
        )  # fmt: skip
        assert "access-control-allow-origin" not in posted.headers, f"{path}: {posted.headers}"


def test_the_feedback_tokens_huge_body_is_413_before_parsing(security_world: World) -> None:
    before = security_world.written()
    headers = {**security_world.callers["feedback"], "Idempotency-Key": security_world.unique("huge")}
    status, answer, _ = send_huge(security_world.gateway.url, "/v1/feedback/batch", headers)
    assert status == 413, answer[:300]
    assert security_world.written() == before


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"namespace": "team-a", "feedback": []}', b'{"namespace": "team-a", "feedback": [{"thumbs": 1}]}',
     b'{"namespace": "team-a", "feedback": [{"runId": "seed-run", "thumbs": 7}]}', b"\xff\xfe"],
    ids=["truncated", "list", "empty", "no-target", "thumbs-7", "not-utf8"],
)  # fmt: skip
def test_the_feedback_tokens_malformed_bodies_are_422(security_world: World, body: bytes) -> None:
    before = security_world.written()
    headers = {
        **security_world.callers["feedback"],
        "Content-Type": "application/json",
        "Idempotency-Key": security_world.unique("malformed"),
    }
    answer = httpx.post(
        f"{security_world.gateway.url}/v1/feedback/batch", content=body, headers=headers, timeout=30
    )
    assert answer.status_code == 422, answer.text[:300]
    assert security_world.written() == before
