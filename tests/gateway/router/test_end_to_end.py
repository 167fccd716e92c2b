"""End to end on one machine: traffic through the router, then runs and feedback for its request ids
through the ingest API; the per-variant statistics the store computes equal the ones computed from the
raw stream of events the test generated. On PostgreSQL and on SQLite."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from controllers.data.reward import RewardWeights, Signals, compute_reward
from controllers.store import migrate
from controllers.store.db import make_engine, session_factory, transaction
from controllers.store.experiments import observations
from devstack.gateway import GatewayProcess
from devstack.upstream import UpstreamProcess
from tests.gateway.router.conftest import SECRET, TOKEN, assignments, chat, put_route, route
from tests.gateway.router.test_proxy import send_all


@dataclass
class Tally:
    """What the raw stream says about one variant."""

    assigned: int = 0
    rewards: list[float] = field(default_factory=list)


def post(gateway: GatewayProcess, path: str, body: dict[str, Any], key: str) -> None:
    response = httpx.post(
        gateway.url + path, json=body, headers={**TOKEN, "Idempotency-Key": key}, timeout=30
    )
    assert response.status_code == 200, response.text


def test_feedback_for_a_request_id_lands_on_the_variant_that_served_it_and_the_store_agrees_with_the_stream(
    empty_url: str, upstream: UpstreamProcess, tmp_path: Path
) -> None:
    migrate.upgrade(empty_url)
    gateway = GatewayProcess(empty_url, SECRET, tmp_path / "gateway.log")
    gateway.start()
    try:
        put_route(gateway, route("e2e", upstream.base("champion"), upstream.base("challenger"), weight=50))
        path, _ = chat("e2e")
        plain = [(path, chat("e2e", user=f"user-{i % 100}")[1], {}) for i in range(300)]
        pinned = [(path, chat("e2e")[1], {"X-Kaizen-Variant": "challenger"}) for _ in range(20)]
        responses = send_all(gateway.url, plain + pinned)
        assert [r.status_code for r in responses] == [200] * 320

        rng = random.Random(11)
        stream: dict[str, Tally] = {"champion": Tally(), "challenger": Tally()}
        runs, feedback = [], []
        for index, response in enumerate(responses):
            request_id, variant = (
                response.headers["x-kaizen-request-id"],
                response.headers["x-kaizen-variant"],
            )
            is_pinned = index >= len(plain)
            # The challenger is the better model: it compiles and passes tests more often.
            compiles = rng.random() < (0.9 if variant == "challenger" else 0.7)
            passed = sum(rng.random() < (0.8 if variant == "challenger" else 0.6) for _ in range(4))
            signals = {"compileOk": compiles, "testsPassed": passed, "testsTotal": 4}
            runs.append(
                {
                    "agent": "coder",
                    "taskId": f"t{index}",
                    "prompt": "p",
                    "output": "o",
                    "requestId": request_id,
                    "signals": signals,
                }
            )
            verdict = None
            if rng.random() < 0.3:  # a person answers on a third of them, by request id
                verdict = rng.random() < 0.6
                feedback.append({"requestId": request_id, "thumbs": 1 if verdict else -1})
            reward = compute_reward(
                Signals(compile_ok=compiles, tests_passed=passed, tests_total=4, human_accepted=verdict),
                RewardWeights(),
            )
            assert reward is not None
            if not is_pinned:
                stream[variant].assigned += 1
                stream[variant].rewards.append(reward)
        for start in range(0, len(runs), 100):
            post(gateway, "/v1/runs/batch", {"runs": runs[start : start + 100]}, f"runs-{start}")
        post(gateway, "/v1/feedback/batch", {"feedback": feedback}, "feedback")

        assignments(empty_url, "exp-e2e", 320)
        engine = make_engine(empty_url)
        with transaction(session_factory(engine)) as session:
            found = observations(session, "exp-e2e")
        engine.dispose()
    finally:
        gateway.stop()

    assert set(found) == set(stream)
    for name, tally in stream.items():
        got, rewards = found[name], tally.rewards
        mean = sum(rewards) / len(rewards)
        variance = sum((r - mean) ** 2 for r in rewards) / (len(rewards) - 1)
        assert (got.assigned, got.rewards, got.errors, got.fallbacks) == (tally.assigned, len(rewards), 0, 0)
        assert got.reward_sum == pytest.approx(sum(rewards), abs=1e-9)
        assert got.reward_sum_squares == pytest.approx(sum(r * r for r in rewards), abs=1e-9)
        assert got.mean_reward == pytest.approx(mean, abs=1e-9)
        assert got.reward_variance == pytest.approx(variance, abs=1e-9)
        assert got.successes == sum(r >= 0.5 for r in rewards)
    assert found["challenger"].mean_reward > found["champion"].mean_reward  # type: ignore[operator]
