"""The experiment store on PostgreSQL and SQLite: route versions, assignments, per-variant observations."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.routes import RouteConfig
from controllers.store import migrate
from controllers.store.db import make_engine, transaction
from controllers.store.experiments import (
    get_route,
    load_routes,
    nearest_rank,
    observations,
    put_route,
    record_assignments,
)
from controllers.store.ingest import insert_runs

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def config(challenger_weight: int = 5, name: str = "coder") -> RouteConfig:
    return RouteConfig.model_validate(
        {
            "namespace": "team",
            "name": name,
            "experiment": "exp",
            "variants": [
                {
                    "name": "champion",
                    "endpoint": "http://a/v1",
                    "weight": 100 - challenger_weight,
                    "champion": True,
                },
                {"name": "challenger", "endpoint": "http://b/v1", "weight": challenger_weight},
            ],
        }
    )


def test_the_same_route_keeps_its_version_and_a_change_bumps_it(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        assert put_route(session, config(5)) == (1, True)
        assert put_route(session, config(5)) == (1, False)
        assert put_route(session, config(25)) == (2, True)
    with transaction(factory) as session:
        found = get_route(session, "team", "coder")
    assert found == (config(25), 2)


def test_load_routes_returns_only_what_changed_since_the_versions_held(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        put_route(session, config(5, "coder"))
        put_route(session, config(5, "fixer"))
    with transaction(factory) as session:
        first = load_routes(session, {})
        assert sorted((c.key, v) for c, v in first.changed) == [("team/coder", 1), ("team/fixer", 1)]
        unchanged = load_routes(session, {"team/coder": 1, "team/fixer": 1, "team/gone": 3})
        assert unchanged.changed == []
        assert unchanged.removed == ["team/gone"]
        put_route(session, config(50, "fixer"))
    with transaction(factory) as session:
        changed = load_routes(session, {"team/coder": 1, "team/fixer": 1})
    assert [(c.key, c.variants[1].weight, v) for c, v in changed.changed] == [("team/fixer", 50, 2)]


def assignment(request_id: str, variant: str, **extra: Any) -> dict[str, Any]:
    row = {
        "request_id": request_id,
        "created_at": NOW,
        "experiment": "exp",
        "variant": variant,
        "served_variant": variant,
        "unit_hash": f"{hash(request_id) & 0xFFFF:064x}",
        "pinned": False,
        "fallback": False,
        "status_code": 200,
        "error": False,
        "error_message": None,
        "latency_ms": None,
        "cost_tokens": None,
    }
    return row | extra


def run(request_id: str, compile_ok: bool, passed: int) -> dict[str, Any]:
    return {
        "id": f"run-{request_id}",
        "created_at": NOW,
        "agent": "coder",
        "task_id": request_id,
        "prompt": "p",
        "output": "o",
        "request_id": request_id,
        "compile_ok": compile_ok,
        "tests_passed": passed,
        "tests_total": 4,
    }


def test_observations_match_the_raw_rows_with_fallbacks_pins_and_rewards(
    factory: sessionmaker[Session],
) -> None:
    rng = random.Random(7)
    assignments, runs = [], []
    for i in range(400):
        variant = "challenger" if rng.random() < 0.3 else "champion"
        row = assignment(f"r{i}", variant, latency_ms=rng.uniform(5, 500), cost_tokens=rng.randint(10, 90))
        row["created_at"] = NOW + timedelta(seconds=i)
        if variant == "challenger" and rng.random() < 0.1:  # failed, served by the champion
            row.update(
                served_variant="champion", fallback=True, error=True, error_message="challenger: HTTP 500"
            )
        if rng.random() < 0.05:
            row.update(pinned=True)
        assignments.append(row)
        if rng.random() < 0.8:
            runs.append(run(f"r{i}", rng.random() < 0.9, rng.randint(0, 4)))
    with transaction(factory) as session:
        record_assignments(session, assignments)
        record_assignments(session, assignments[:50])  # a retried flush changes nothing
        insert_runs(session, runs)
    with transaction(factory) as session:
        found = observations(session, "exp")

    rewards = {r["request_id"]: (0.25 * r["compile_ok"] + 0.25 * r["tests_passed"] / 4) / 0.5 for r in runs}
    counted = [a for a in assignments if not a["pinned"]]
    for name in ("champion", "challenger"):
        served = [a for a in counted if a["served_variant"] == name]
        mine = [rewards[a["request_id"]] for a in served if a["request_id"] in rewards]
        latencies = sorted(a["latency_ms"] for a in served)
        got = found[name]
        assert got.assigned == len(served)
        assert got.errors == sum(a["error"] for a in counted if a["variant"] == name)
        assert got.fallbacks == sum(a["fallback"] for a in counted if a["variant"] == name)
        assert got.rewards == len(mine)
        assert got.reward_sum == pytest.approx(sum(mine), abs=1e-9)
        assert got.reward_sum_squares == pytest.approx(sum(r * r for r in mine), abs=1e-9)
        assert got.successes == sum(r >= 0.5 for r in mine)
        assert got.cost_sum == sum(a["cost_tokens"] for a in served)
        assert got.latency_p95_ms == pytest.approx(latencies[math.ceil(0.95 * len(latencies)) - 1])
    assert found["challenger"].fallbacks > 0
    assert set(found) == {"champion", "challenger"}


def test_an_experiment_without_traffic_has_no_observations(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        assert observations(session, "nothing-yet") == {}


def test_nearest_rank_quantiles() -> None:
    assert nearest_rank([], 0.95) is None
    assert nearest_rank([3.0], 0.95) == 3.0
    assert nearest_rank([float(i) for i in range(1, 101)], 0.95) == 95.0
    assert nearest_rank([float(i) for i in range(1, 21)], 0.95) == 19.0


def test_upgrading_from_0002_keeps_assignments_as_served_by_their_variant(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0002")
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO experiment_assignments (request_id, created_at, experiment, variant, unit_hash,"
                " pinned, fallback) VALUES ('q1', :now, 'exp', 'challenger', 'h', false, false)"
            ),
            {"now": NOW},
        )
    assert migrate.upgrade(empty_url) == migrate.head_revision()
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT variant, served_variant, error, status_code FROM experiment_assignments")
        ).one()
    engine.dispose()
    assert tuple(row) == ("challenger", "challenger", False, None)
