"""The drift windows on PostgreSQL and SQLite: the first and last W rewards a variant served after the
promotion, and the traffic within each window's span."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controllers.store.db import transaction
from controllers.store.drift import drift_windows
from controllers.store.experiments import record_assignments
from controllers.store.ingest import insert_runs
from tests.store.test_experiments import NOW, assignment

PROMOTED = NOW + timedelta(hours=1)


def rated(request_id: str, passed: int, total: int = 10) -> dict[str, Any]:
    """A run whose reward is its test pass rate (the only signal it reports)."""
    return {
        "id": f"run-{request_id}",
        "created_at": NOW,
        "agent": "coder",
        "task_id": request_id,
        "prompt": "p",
        "output": "o",
        "request_id": request_id,
        "tests_passed": passed,
        "tests_total": total,
    }


def store(
    factory: sessionmaker[Session], assignments: list[dict[str, Any]], runs: list[dict[str, Any]]
) -> None:
    with transaction(factory) as session:
        record_assignments(session, assignments)
        insert_runs(session, runs)


def test_no_windows_until_twice_the_window_size_of_rewards_after_the_promotion(
    factory: sessionmaker[Session],
) -> None:
    # Given 19 rewarded requests served by the promoted variant after the promotion, and rewarded
    # traffic that must not count: before it, pinned, served by the old champion, another experiment
    served = [
        assignment(f"a{i}", "challenger", created_at=PROMOTED + timedelta(seconds=i + 1)) for i in range(19)
    ]
    noise = [
        assignment("before", "challenger", created_at=PROMOTED - timedelta(seconds=1)),
        assignment("at", "challenger", created_at=PROMOTED),
        assignment("pinned", "challenger", created_at=PROMOTED + timedelta(seconds=5), pinned=True),
        assignment("old", "champion", created_at=PROMOTED + timedelta(seconds=5)),
        assignment("other", "challenger", created_at=PROMOTED + timedelta(seconds=5), experiment="other"),
    ]
    unrated = assignment("unrated", "challenger", created_at=PROMOTED + timedelta(seconds=30))
    store(factory, [*served, *noise, unrated], [rated(a["request_id"], 8) for a in served + noise])
    with transaction(factory) as session:
        waiting = drift_windows(session, "exp", "challenger", PROMOTED, size=10)
    # Then it counts 19 and forms no window; one more reward forms both
    assert (waiting.rewards, waiting.baseline, waiting.recent) == (19, None, None)
    late = assignment("a19", "challenger", created_at=PROMOTED + timedelta(seconds=40))
    store(factory, [late], [rated("a19", 8)])
    with transaction(factory) as session:
        ready = drift_windows(session, "exp", "challenger", PROMOTED, size=10)
    assert ready.rewards == 20
    assert ready.baseline is not None
    assert ready.recent is not None
    assert (ready.baseline.rewards, ready.recent.rewards) == (10, 10)


def test_windows_hold_the_first_and_last_rewards_in_served_order_and_the_traffic_of_their_spans(
    factory: sessionmaker[Session],
) -> None:
    # Given a promoted challenger's traffic after the promotion: errors served by the champion instead
    # (fallbacks), unrated requests, pinned ones, latency and cost; runs reported in a shuffled order
    rng = random.Random(11)
    assignments, runs = [], []
    for i in range(300):
        row = assignment(
            f"r{i:03d}",
            "challenger",
            created_at=PROMOTED + timedelta(seconds=i),
            latency_ms=rng.uniform(5, 500),
            cost_tokens=rng.randint(10, 90),
        )
        if rng.random() < 0.08:
            row.update(served_variant="champion", fallback=True, error=True)
        elif rng.random() < 0.04:
            row.update(error=True)
        if rng.random() < 0.05:
            row.update(pinned=True)
        assignments.append(row)
        if rng.random() < 0.7:
            runs.append(rated(row["request_id"], rng.randint(0, 10)))
    rng.shuffle(runs)
    store(factory, assignments, runs)
    with transaction(factory) as session:
        found = drift_windows(session, "exp", "challenger", PROMOTED, size=40)

    reward = {r["request_id"]: r["tests_passed"] / 10 for r in runs}
    counted = [a for a in assignments if not a["pinned"]]
    rewarded = [a for a in counted if a["served_variant"] == "challenger" and a["request_id"] in reward]
    assert found.rewards == len(rewarded) >= 80
    for window, rows in ((found.baseline, rewarded[:40]), (found.recent, rewarded[-40:])):
        assert window is not None
        mine = [reward[a["request_id"]] for a in rows]
        span = [a for a in counted if rows[0]["created_at"] <= a["created_at"] <= rows[-1]["created_at"]]
        served = [a for a in span if a["served_variant"] == "challenger"]
        latencies = sorted(a["latency_ms"] for a in served)
        assert window.rewards == 40
        assert window.reward_sum == pytest.approx(sum(mine), abs=1e-9)
        assert window.reward_sum_squares == pytest.approx(sum(r * r for r in mine), abs=1e-9)
        assert window.successes == sum(r >= 0.5 for r in mine)
        assert window.assigned == len(served)
        assert window.errors == sum(a["error"] for a in span)
        assert window.fallbacks == sum(a["fallback"] for a in span)
        assert window.cost_sum == sum(a["cost_tokens"] for a in served)
        assert window.latency_p95_ms == pytest.approx(latencies[math.ceil(0.95 * len(latencies)) - 1])
    assert found.baseline is not None
    assert found.recent is not None
    assert found.baseline.fallbacks + found.recent.fallbacks > 0
    # and the windows share no request: the baseline ends before the recent window begins
    assert rewarded[39]["created_at"] < rewarded[-40]["created_at"]


def test_requests_served_in_the_same_instant_are_split_between_windows_by_request_id(
    factory: sessionmaker[Session],
) -> None:
    # Given 20 rewarded requests all served at one instant (a coarse clock), rewards 0 for the first
    # ten request ids and 1 for the last ten
    rows = [
        assignment(f"q{i:02d}", "challenger", created_at=PROMOTED + timedelta(seconds=1)) for i in range(20)
    ]
    store(factory, rows, [rated(f"q{i:02d}", 0 if i < 10 else 10) for i in range(20)])
    with transaction(factory) as session:
        found = drift_windows(session, "exp", "challenger", PROMOTED, size=10)
    # Then each window holds its own ten, and each request counts in one span only
    assert found.baseline is not None
    assert found.recent is not None
    assert (found.baseline.reward_sum, found.recent.reward_sum) == (0.0, 10.0)
    assert (found.baseline.assigned, found.recent.assigned) == (10, 10)
