"""Experiment statistics over time from the store, and ``kaizen experiment report`` on top of them."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.routes import RouteConfig, experiment_key
from controllers.store.db import make_engine, session_factory, transaction
from controllers.store.experiment_series import observation_series
from controllers.store.experiments import observations, put_route, record_assignments
from controllers.store.ingest import insert_runs

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
KEY = experiment_key("team", "coder-exp")


def seed(session: Session, requests: int = 3_000) -> None:
    """Twelve hours of traffic: challenger at 5 %, then 25 %; it is worse, fails now and then."""
    rng = random.Random(11)
    put_route(
        session,
        RouteConfig.model_validate(
            {
                "namespace": "team",
                "name": "coder",
                "experiment": KEY,
                "variants": [
                    {"name": "champion", "endpoint": "http://a/v1", "weight": 75, "champion": True},
                    {"name": "challenger", "endpoint": "http://b/v1", "weight": 25},
                ],
            }
        ),
    )
    assignments: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for i in range(requests):
        at = START + timedelta(seconds=12 * 3600 * i / requests)
        share = 0.05 if i < requests // 2 else 0.25
        variant = "challenger" if rng.random() < share else "champion"
        served, fallback = variant, variant == "challenger" and rng.random() < 0.05
        if fallback:
            served = "champion"
        assignments.append(
            {
                "request_id": f"q{i}",
                "created_at": at,
                "experiment": KEY,
                "variant": variant,
                "served_variant": served,
                "unit_hash": f"{i:064x}",
                "pinned": rng.random() < 0.02,
                "fallback": fallback,
                "status_code": 200,
                "error": fallback,
                "error_message": "HTTP 500" if fallback else None,
                "latency_ms": rng.uniform(50, 400) * (1.3 if served == "challenger" else 1.0),
                "cost_tokens": rng.randint(100, 900),
            }
        )
        if rng.random() < 0.9:
            good = rng.random() < (0.40 if served == "challenger" else 0.60)
            runs.append(
                {
                    "id": f"run-{i}",
                    "created_at": at + timedelta(seconds=30),
                    "agent": "coder",
                    "task_id": f"t{i}",
                    "prompt": "p",
                    "output": "o",
                    "request_id": f"q{i}",
                    "compile_ok": good,
                }
            )
    record_assignments(session, assignments)
    insert_runs(session, runs, "team")  # the agent reports its runs in the route's namespace


def test_the_last_snapshot_is_what_the_store_reports_now(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        seed(session)
    with transaction(factory) as session:
        series = observation_series(session, KEY, buckets=12)
        now = observations(session, KEY)
    _, last, _ = series[-1]
    assert set(last) == set(now) == {"champion", "challenger"}
    for name, expected in now.items():
        got = last[name]
        for field in (
            "assigned",
            "rewards",
            "successes",
            "errors",
            "fallbacks",
            "latency_p95_ms",
            "cost_sum",
        ):
            assert getattr(got, field) == getattr(expected, field), (name, field)
        assert got.reward_sum == pytest.approx(expected.reward_sum)
        assert got.reward_sum_squares == pytest.approx(expected.reward_sum_squares)


def test_snapshots_accumulate_and_the_split_follows_the_weight_steps(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        seed(session)
    with transaction(factory) as session:
        series = observation_series(session, KEY, buckets=12)
    assert len(series) == 12
    times = [when for when, _, _ in series]
    assert times == sorted(times)
    assert times[-1] == START + timedelta(seconds=12 * 3600 * 2_999 / 3_000)
    served = [snapshot["challenger"].assigned for _, snapshot, _ in series]
    assert served == sorted(served)
    assert all(sum(weights.values()) == 100 for _, _, weights in series)
    early, late = series[1][2]["challenger"], series[-2][2]["challenger"]
    assert 1 <= early <= 12
    assert 17 <= late <= 33


def test_an_experiment_without_traffic_has_no_series(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        assert observation_series(session, "team/none") == []


def kaizen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controllers.cli.main", *args], capture_output=True, text=True, timeout=120
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_prints_the_table_and_writes_the_plot(store_url: str, tmp_path: Path) -> None:
    engine = make_engine(store_url)
    with transaction(session_factory(engine)) as session:
        seed(session)
    engine.dispose()
    out = tmp_path / "report.png"
    result = kaizen(
        "experiment", "report", "coder-exp", "-n", "team", "--database-url", store_url, "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["VARIANT", "ROLE", "WEIGHT", "SAMPLES"]
    champion = next(line for line in lines if line.startswith("champion"))
    challenger = next(line for line in lines if line.startswith("challenger"))
    assert champion.split()[1:3] == ["Champion", "75%"]
    assert challenger.split()[1:3] == ["Challenger", "25%"]
    assert "[-0." in challenger  # a worse challenger: the interval sits below zero
    assert f"plot written to {out}" in result.stdout
    width, height = png_size(out)
    assert (width, height) == (1100, 990)
    assert out.stat().st_size > 40_000  # three panels with lines and bands, not an empty canvas


def test_report_of_an_unknown_experiment_says_what_is_missing(store_url: str) -> None:
    result = kaizen("experiment", "report", "nope", "-n", "team", "--database-url", store_url)
    assert result.returncode == 1
    assert "no traffic recorded for experiment team/nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_report_reads_assignments_under_the_key_the_operator_writes() -> None:
    from controllers.reconcile.experiments import experiment_key as operators_key

    assert experiment_key("team", "coder-exp") == operators_key("team", "coder-exp")
