"""Experiment data over time from the store, and ``kaizen experiment report`` on top of it: with the
Experiment read from a (stand-in) Kubernetes API, and without a cluster."""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.routes import RouteConfig, allocation_text, experiment_key
from controllers.cli.cluster import read_experiment
from controllers.store.db import make_engine, session_factory, transaction
from controllers.store.experiment_series import experiment_series, timed_reward_stream
from controllers.store.experiment_traffic import reward_stream
from controllers.store.experiments import observations, put_route, record_assignments
from controllers.store.ingest import insert_runs
from controllers.store.models import Run

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
KEY = experiment_key("team", "coder-exp")
REQUESTS = 3_000
DECIDED_AT = START + timedelta(hours=9, minutes=3, seconds=4)  # after the step to 25 %, before the end


def at(i: int) -> datetime:
    return START + timedelta(seconds=12 * 3600 * i / REQUESTS)


def seed(session: Session) -> None:
    """Twelve hours of traffic: challenger at 5 %, then 25 %; it is worse, fails now and then. Each
    request is rewarded 30 s after it was served (``changed_at``: when the store recorded it)."""
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
    for i in range(REQUESTS):
        share = 5 if i < REQUESTS // 2 else 25
        variant = "challenger" if rng.random() < share / 100 else "champion"
        served, fallback = variant, variant == "challenger" and rng.random() < 0.05
        if fallback:
            served = "champion"
        assignments.append(
            {
                "request_id": f"q{i}",
                "created_at": at(i),
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
                "allocation": allocation_text({"challenger": share, "champion": 100 - share}),
            }
        )
        if rng.random() < 0.9:
            good = rng.random() < (0.40 if served == "challenger" else 0.60)
            runs.append(
                {
                    "id": f"run-{i}",
                    "created_at": at(i) + timedelta(seconds=30),
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
    session.execute(update(Run).where(Run.namespace == "team").values(changed_at=Run.created_at))


def test_the_series_ends_with_what_the_store_reports_now(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        seed(session)
    with transaction(factory) as session:
        series = experiment_series(session, KEY, buckets=12)
        now = observations(session, KEY)
        stream = reward_stream(session, KEY)
    assert series is not None
    assert set(series.observations) == set(now) == {"champion", "challenger"}
    for name, expected in now.items():
        got = series.observations[name]
        for field in ("assigned", "errors", "fallbacks", "latency_p95_ms", "cost_sum"):
            assert getattr(got, field) == getattr(expected, field), (name, field)
    # The planner's reward stream, with the time each reward was recorded.
    assert series.stream.names == stream.names
    assert np.array_equal(series.stream.arm, stream.arm)
    assert np.array_equal(series.stream.shares, stream.shares)
    assert np.array_equal(series.stream.reward, stream.reward)
    assert np.all(np.diff(series.recorded) >= 0)
    assert series.counts()[-1] == len(stream)  # the last snapshot sees every reward
    assert series.edges[-1] == at(REQUESTS - 1) + timedelta(seconds=30)  # the last reward recorded


def test_snapshots_follow_the_router_weights(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        seed(session)
    with transaction(factory) as session:
        series = experiment_series(session, KEY, buckets=12)
    assert series is not None
    assert len(series.edges) == len(series.traffic) == 12
    assert list(series.edges) == sorted(series.edges)
    assert series.start == at(0)
    counts = series.counts()
    assert counts == sorted(counts)
    assert all(sum(shares.values()) == pytest.approx(100.0) for shares in series.traffic)
    assert series.traffic[1]["challenger"] == pytest.approx(5.0)
    assert series.traffic[-2]["challenger"] == pytest.approx(25.0)


def test_a_decided_series_ends_at_decided_at(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        seed(session)
    with transaction(factory) as session:
        whole, recorded = timed_reward_stream(session, KEY)
        series = experiment_series(session, KEY, buckets=12, until=DECIDED_AT)
    assert series is not None
    assert series.edges[-1] == DECIDED_AT
    assert series.recorded.max() <= DECIDED_AT.timestamp()
    kept = int(np.searchsorted(recorded, DECIDED_AT.timestamp(), side="right"))
    assert 0 < kept == len(series.stream) < len(whole)  # the prefix the planner had, nothing later
    assert np.array_equal(series.stream.reward, whole.reward[:kept])
    served = sum(obs.assigned for obs in series.observations.values())
    assert served < sum(1 for i in range(REQUESTS) if at(i) <= DECIDED_AT)  # pinned ones left out


def test_an_experiment_without_traffic_has_no_series(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        assert experiment_series(session, "team/none") is None


# ``kaizen experiment report``, with and without a cluster.

STATUS = {
    "decision": "RollBack",
    "decisionReason": "challenger reward 0.412 vs champion 0.600: worse than champion, rolled back",
    "decidedAt": DECIDED_AT.isoformat(),
    "variants": [
        {"name": "champion", "weight": 100, "samples": 1234, "meanReward": 0.6012, "errorRate": 0.0},
        {
            "name": "challenger",
            "weight": 0,
            "samples": 321,
            "meanReward": 0.4123,
            "confidenceLower": -0.2468,
            "confidenceUpper": -0.0137,
            "pValue": 0.00042,
            "errorRate": 0.0421,
            "latencyP95Ms": 377.0,
        },
    ],
}


def experiment(status: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "coder-exp", "namespace": "team"},
        "spec": {
            "variants": [
                {"name": "champion", "role": "Champion", "endpoint": "http://a/v1"},
                {"name": "challenger", "endpoint": "http://b/v1"},
            ],
            "rollout": {"alpha": 0.05, "minDetectableEffect": 0.05},
        },
        **({"status": status} if status else {}),
    }


class FakeApiServer(BaseHTTPRequestHandler):
    """Answers GET for the Experiments in ``objects`` (path → body), 404 for anything else."""

    objects: ClassVar[dict[str, dict[str, Any]]] = {}

    def do_GET(self) -> None:
        body = self.objects.get(self.path)
        payload = body or {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
        data = json.dumps(payload).encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "me", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
                "current-context": "fake",
            }
        )
    )
    return path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Path, dict[str, dict[str, Any]]]]:
    """A kubeconfig for a stand-in API server, and the objects it serves (empty at first)."""
    objects: ClassVar[dict[str, dict[str, Any]]] = {}
    handler = type("Handler", (FakeApiServer,), {"objects": objects})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{server.server_port}"), objects
    finally:
        server.shutdown()
        server.server_close()


PATH = "/apis/kaizen.dev/v1alpha1/namespaces/team/experiments/coder-exp"


def kaizen(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KUBERNETES_")}
    return subprocess.run(
        [sys.executable, "-m", "controllers.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "KUBECONFIG": str(config)},
    )


def seeded(store_url: str) -> str:
    engine = make_engine(store_url)
    with transaction(session_factory(engine)) as session:
        seed(session)
    engine.dispose()
    return store_url


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def report(store_url: str, out: Path, config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    command = ("experiment", "report", "coder-exp", "-n", "team", "--database-url", store_url, "-o", str(out))
    return kaizen(*command, *flags, config=config)


def test_a_decided_experiment_reports_its_status_and_ends_at_the_decision(
    store_url: str, tmp_path: Path, cluster: tuple[Path, dict[str, dict[str, Any]]]
) -> None:
    config, objects = cluster
    objects[PATH] = experiment(STATUS)
    out = tmp_path / "report.png"
    result = report(seeded(store_url), out, config)
    assert result.returncode == 0, result.stderr
    assert "note:" not in result.stderr  # the Experiment came from the cluster
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["VARIANT", "ROLE", "WEIGHT", "SAMPLES"]
    champion = next(line for line in lines if line.startswith("champion"))
    challenger = next(line for line in lines if line.startswith("challenger"))
    assert champion.split() == ["champion", "Champion", "100%", "1234", "0.601", "-", "-", "0.00%", "-"]
    assert challenger.split() == [
        *["challenger", "Challenger", "0%", "321", "0.412", "[-0.247,", "-0.014]", "0.00042"],
        *["4.21%", "377ms"],
    ]
    assert f"decision: RollBack at {DECIDED_AT.isoformat()}: challenger reward 0.412" in result.stdout
    assert f"plot written to {out}" in result.stdout
    assert png_size(out) == (1100, 990)
    assert out.stat().st_size > 40_000  # three panels with lines and bands, not an empty canvas


def test_an_undecided_experiment_is_computed_from_the_store_with_its_spec(
    store_url: str, tmp_path: Path, cluster: tuple[Path, dict[str, dict[str, Any]]]
) -> None:
    config, objects = cluster
    objects[PATH] = experiment({"decision": "Continue", "decisionReason": "evaluating at 25%"})
    result = report(seeded(store_url), tmp_path / "report.png", config)
    assert result.returncode == 0, result.stderr
    challenger = next(line for line in result.stdout.splitlines() if line.startswith("challenger"))
    assert challenger.split()[1:3] == ["Challenger", "25%"]  # no status rows: the route's weights
    assert "[-0." in challenger  # a worse challenger: the sequence lies below zero
    assert "decision: Continue: evaluating at 25%" in result.stdout


def test_without_a_cluster_the_flags_stand_in_and_a_note_says_so(store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    result = report(seeded(store_url), out, tmp_path / "no-such-kubeconfig", "--alpha", "0.1")
    assert result.returncode == 0, result.stderr
    assert "note: the Experiment could not be read from a cluster: no cluster configured" in result.stderr
    assert "--alpha 0.1, --min-detectable-effect 0.05 (default), the route's champion" in result.stderr
    assert result.stdout.splitlines()[0].split()[6:8] == ["90%", "CS"]
    challenger = next(line for line in result.stdout.splitlines() if line.startswith("challenger"))
    assert challenger.split()[1:3] == ["Challenger", "25%"]
    assert "decision:" not in result.stdout
    assert png_size(out) == (1100, 990)


def test_an_unreachable_cluster_does_not_hold_the_report_up(store_url: str, tmp_path: Path) -> None:
    silent = socket.socket()  # accepts connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        config = kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{silent.getsockname()[1]}")
        began = time.monotonic()
        result = report(seeded(store_url), tmp_path / "report.png", config)
    finally:
        silent.close()
    assert result.returncode == 0, result.stderr
    assert "is not reachable" in result.stderr
    assert time.monotonic() - began < 60


def test_an_experiment_missing_from_the_cluster_falls_back_to_the_store(
    store_url: str, cluster: tuple[Path, dict[str, dict[str, Any]]], tmp_path: Path
) -> None:
    config, _ = cluster
    result = report(seeded(store_url), tmp_path / "report.png", config, "--champion", "champion")
    assert result.returncode == 0, result.stderr
    assert "has no Experiment team/coder-exp" in result.stderr
    assert "--champion champion" in result.stderr


def test_read_experiment_parses_what_the_api_server_returns(
    cluster: tuple[Path, dict[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, objects = cluster
    objects[PATH] = experiment(STATUS)
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    found, why = read_experiment("team", "coder-exp")
    assert why == ""
    assert found is not None
    assert found.status is not None
    assert found.status.decided_at == DECIDED_AT
    assert [row.name for row in found.status.variants] == ["champion", "challenger"]
    missing, why = read_experiment("team", "other")
    assert missing is None
    assert "has no Experiment team/other" in why


def test_report_of_an_unknown_experiment_says_what_to_check(store_url: str, tmp_path: Path) -> None:
    result = kaizen(
        *("experiment", "report", "nope", "-n", "team", "--database-url", store_url),
        config=tmp_path / "no-such-kubeconfig",
    )
    assert result.returncode == 1
    assert "no traffic recorded for experiment team/nope" in result.stderr
    assert "--database-url" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_report_reads_assignments_under_the_key_the_operator_writes() -> None:
    from controllers.reconcile.experiments import experiment_key as operators_key

    assert experiment_key("team", "coder-exp") == operators_key("team", "coder-exp")
