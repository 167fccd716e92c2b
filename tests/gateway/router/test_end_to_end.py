"""End to end on one machine: traffic through the router, then runs and feedback for its request ids
through the ingest API; the per-variant statistics the store computes equal the ones computed from the
raw stream of events the test generated. On PostgreSQL and on SQLite."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from controllers.data.reward import RewardWeights, Signals, compute_reward
from controllers.store.db import make_engine, session_factory, transaction
from controllers.store.experiments import VariantObservations, observations
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


@pytest.fixture
def own_gateway(store_url: str, tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway of this test's own, on a freshly migrated database (PostgreSQL or SQLite)."""
    gateway = GatewayProcess(store_url, SECRET, tmp_path / "gateway.log")
    gateway.start()
    yield gateway
    gateway.stop()


def given_a_fifty_fifty_route(gateway: GatewayProcess, upstream: UpstreamProcess) -> None:
    put_route(gateway, route("e2e", upstream.base("champion"), upstream.base("challenger"), weight=50))


def when_plain_and_pinned_traffic_is_sent(
    gateway: GatewayProcess, plain: int, pinned: int
) -> tuple[list[httpx.Response], int]:
    """``plain`` requests from 100 users, then ``pinned`` ones pinned to the challenger."""
    path, _ = chat("e2e")
    unpinned = [(path, chat("e2e", user=f"user-{i % 100}")[1], {}) for i in range(plain)]
    forced = [(path, chat("e2e")[1], {"X-Kaizen-Variant": "challenger"}) for _ in range(pinned)]
    return send_all(gateway.url, unpinned + forced), len(unpinned)


def outcome(
    rng: random.Random, index: int, request_id: str, variant: str
) -> tuple[dict[str, Any], dict[str, Any] | None, float]:
    """The run an agent reports for one response, a person's thumbs (on a third), and its reward."""
    # The challenger is the better model: it compiles and passes tests more often.
    compiles = rng.random() < (0.9 if variant == "challenger" else 0.7)
    passed = sum(rng.random() < (0.8 if variant == "challenger" else 0.6) for _ in range(4))
    signals = {"compileOk": compiles, "testsPassed": passed, "testsTotal": 4}
    run = {
        "agent": "coder",
        "taskId": f"t{index}",
        "prompt": "p",
        "output": "o",
        "requestId": request_id,
        "signals": signals,
    }
    verdict, feedback = None, None
    if rng.random() < 0.3:  # a person answers on a third of them, by request id
        verdict = rng.random() < 0.6
        feedback = {"requestId": request_id, "thumbs": 1 if verdict else -1}
    reward = compute_reward(
        Signals(compile_ok=compiles, tests_passed=passed, tests_total=4, human_accepted=verdict),
        RewardWeights(),
    )
    assert reward is not None
    return run, feedback, reward


def when_runs_and_feedback_are_reported_by_request_id(
    gateway: GatewayProcess, responses: list[httpx.Response], plain: int
) -> dict[str, Tally]:
    """Report a run for every response and feedback for some; the raw stream of the unpinned ones."""
    rng = random.Random(11)
    stream: dict[str, Tally] = {"champion": Tally(), "challenger": Tally()}
    runs, feedback = [], []
    for index, response in enumerate(responses):
        variant = response.headers["x-kaizen-variant"]
        run, thumbs, reward = outcome(rng, index, response.headers["x-kaizen-request-id"], variant)
        runs.append(run)
        if thumbs is not None:
            feedback.append(thumbs)
        if index < plain:  # pinned requests are not part of the experiment's statistics
            stream[variant].assigned += 1
            stream[variant].rewards.append(reward)
    for start in range(0, len(runs), 100):
        post(
            gateway,
            "/v1/runs/batch",
            {"namespace": "team", "runs": runs[start : start + 100]},
            f"runs-{start}",
        )
    post(gateway, "/v1/feedback/batch", {"namespace": "team", "feedback": feedback}, "feedback")
    return stream


def stored_observations(url: str, experiment: str) -> dict[str, VariantObservations]:
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        found = observations(session, experiment)
    engine.dispose()
    return found


def then_the_store_agrees_with_the_stream(
    found: dict[str, VariantObservations], stream: dict[str, Tally]
) -> None:
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


def test_feedback_for_a_request_id_lands_on_the_variant_that_served_it_and_the_store_agrees_with_the_stream(
    store_url: str, own_gateway: GatewayProcess, upstream: UpstreamProcess
) -> None:
    given_a_fifty_fifty_route(own_gateway, upstream)

    responses, plain = when_plain_and_pinned_traffic_is_sent(own_gateway, plain=300, pinned=20)
    assert [r.status_code for r in responses] == [200] * 320
    stream = when_runs_and_feedback_are_reported_by_request_id(own_gateway, responses, plain)

    assignments(store_url, "exp-e2e", 320)
    found = stored_observations(store_url, "exp-e2e")
    then_the_store_agrees_with_the_stream(found, stream)
    assert found["challenger"].mean_reward > found["champion"].mean_reward  # type: ignore[operator]
