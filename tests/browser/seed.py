"""A policy's loop written the way it happens: through the gateway, as the operator and the agents do.

The policy and the route (with its Experiment) are PUT by an operator's token; runs naming the
router's request ids, feedback and explicit pairs are POSTed by an agent's writes. Only the
router's assignment rows go straight into the store: the router writes them while it proxies model
calls, and there is no model server in this tier.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from controllers.api.routes import allocation_text
from controllers.decisions.loop_summary import summarize
from controllers.store import loop_objects
from controllers.store.db import make_engine
from controllers.store.experiments import record_assignments
from tests.browser.conftest import bearer

NAMESPACE, POLICY, EXPERIMENT = "team", "coder", "team/coder-exp"
WEIGHTS = {"champion": 80, "challenger": 20}


def write(url: str, method: str, path: str, body: dict[str, Any], key: str) -> None:
    answer = httpx.request(
        method, f"{url}{path}", json=body, headers={**bearer(), "Idempotency-Key": key}, timeout=60
    )
    assert answer.status_code == 200, answer.text


def route(url: str, weights: dict[str, int], champion: str = "champion", key: str = "route-1") -> None:
    variants = [
        {
            "name": name,
            "endpoint": f"http://127.0.0.1:9/{name}/v1",
            "weight": share,
            "champion": name == champion,
        }
        for name, share in weights.items()
    ]
    body = {"namespace": NAMESPACE, "name": POLICY, "experiment": EXPERIMENT, "variants": variants}
    write(url, "PUT", f"/v1/routes/{NAMESPACE}/{POLICY}", body, key)


def served(store_url: str, first: int, count: int) -> None:
    """The router's rows for requests q<first>..: every fifth one to the challenger."""
    now = datetime.now(UTC)
    rows = [
        {
            "namespace": NAMESPACE,
            "request_id": f"q{i}",
            "created_at": now - timedelta(minutes=count - (i - first)),
            "experiment": EXPERIMENT,
            "route": POLICY,
            "variant": "challenger" if i % 5 == 0 else "champion",
            "served_variant": "challenger" if i % 5 == 0 else "champion",
            "unit_hash": f"{i:064x}",
            "pinned": False,
            "fallback": False,
            "status_code": 200,
            "error": False,
            "error_message": None,
            "latency_ms": 100.0 + i,
            "cost_tokens": 200,
            "allocation": allocation_text(WEIGHTS),
        }
        for i in range(first, first + count)
    ]
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        record_assignments(session, rows)
    engine.dispose()


def runs(url: str, first: int, count: int, key: str) -> None:
    """The agent's runs for those requests: the challenger's pass every test, the champion's half."""
    body = {
        "namespace": NAMESPACE,
        "runs": [
            {
                "agent": "coder",
                "role": "coder",
                "taskId": f"t{i}",
                "prompt": f"task {i}",
                "output": f"answer {i}",
                "requestId": f"q{i}",
                "signals": {"compileOk": True, "testsPassed": 2 if i % 5 == 0 else i % 2, "testsTotal": 2},
            }
            for i in range(first, first + count)
        ],
    }
    write(url, "POST", "/v1/runs/batch", body, key)


def seed_loop(url: str, store_url: str, requests: int = 40, operator: bool = True) -> None:
    """The gateway's side of a loop and, with ``operator``, the operator's summaries of its objects."""
    write(url, "PUT", f"/v1/policies/{NAMESPACE}/{POLICY}", {"agent": "coder"}, "policy-1")
    route(url, WEIGHTS)
    served(store_url, 0, requests)
    runs(url, 0, requests, "runs-1")
    feedback = [{"requestId": f"q{i}", "thumbs": 1 if i % 2 else -1} for i in range(6)]
    write(url, "POST", "/v1/feedback/batch", {"namespace": NAMESPACE, "feedback": feedback}, "feedback-1")
    pairs = [
        {"agent": "coder", "prompt": f"task {i}", "chosen": f"good {i}", "rejected": f"bad {i}"}
        for i in range(3)
    ]
    write(url, "POST", "/v1/pairs/batch", {"namespace": NAMESPACE, "pairs": pairs}, "pairs-1")
    if operator:
        training_run(store_url)
        policy_status(store_url)
        experiment_status(store_url, {"decision": "Continue", "challengerWeight": 20})


def operator_summary(
    store_url: str, kind: str, name: str, spec: dict[str, Any], status: dict[str, Any]
) -> None:
    """What the operator leaves in the store just before it writes an object's status
    (``controllers.reconcile.loop_mirror``): there is no operator in this tier."""
    raw = {"metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}"}, "spec": spec}
    summary = summarize(kind, raw, status)
    assert summary is not None
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        loop_objects.upsert(session, summary, datetime.now(UTC))
    engine.dispose()


EXPERIMENT_SPEC = {
    "policyRef": POLICY,
    "rollout": {"alpha": 0.05, "minDetectableEffect": 0.05},
    "variants": [{"name": "champion", "role": "Champion"}, {"name": "challenger", "role": "Challenger"}],
}


def training_run(store_url: str, name: str = "coder-0001") -> None:
    spec = {"policyRef": POLICY, "trigger": "NewData", "training": {"method": "DPO"}}
    status = {
        "attempts": 1,
        "startTime": "2026-12-01T09:00:00Z",
        "completionTime": "2026-12-01T09:20:00Z",
        "dataset": {"trainRows": 86, "evalRows": 10},
        "metrics": {"trainLoss": 0.412, "evalLoss": 0.5, "preferenceAccuracy": 0.8, "steps": 24},
        "shadowModel": name,
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "Trained",
                "message": "trained",
                "lastTransitionTime": "2026-12-01T09:20:00Z",
            }
        ],
    }
    operator_summary(store_url, "TrainingRun", name, spec, status)


def experiment_status(store_url: str, status: dict[str, Any]) -> None:
    operator_summary(store_url, "Experiment", EXPERIMENT.split("/")[1], EXPERIMENT_SPEC, status)


def policy_status(store_url: str) -> None:
    when = "2026-12-01T10:00:00Z"
    status = {
        "champion": {"shadowModel": "coder-0001", "since": when},
        "lastTrainingRun": "coder-0001",
        "lineage": [{"shadowModel": "coder-0001", "trainingRun": "coder-0001", "promotedAt": when}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "Watching",
                        "message": "champion coder-0001; 3 new approved pairs of 60", "lastTransitionTime": when}],
    }  # fmt: skip
    operator_summary(store_url, "LearningPolicy", POLICY, {}, status)
