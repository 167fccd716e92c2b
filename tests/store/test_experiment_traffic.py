"""What the sequential tests read from the store, on PostgreSQL and SQLite: the reward stream (assigned
variant, its weights, in the order rewards were recorded) and the allocation epochs (new units only)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.routes import allocation_text
from controllers.store.db import transaction
from controllers.store.experiment_traffic import allocation_epochs, reward_stream, traffic
from controllers.store.experiments import record_assignments
from controllers.store.ingest import insert_runs
from controllers.store.models import Run
from tests.store.test_experiments import NOW, assignment, run

EARLY = {"champion": 95, "challenger": 5}
LATE = {"champion": 50, "challenger": 50}


def stored(factory: sessionmaker[Session]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """300 requests from 120 units: 150 under EARLY, then 150 under LATE; some units come back in the
    late epoch, some requests fall back, some are pinned, some predate revision 0006 (no weights);
    rewards are recorded in an order unrelated to the requests'."""
    rng = random.Random(11)
    assignments, runs = [], []
    for i in range(300):
        weights = EARLY if i < 150 else LATE
        unit = rng.randrange(80) if i < 150 else rng.randrange(40, 120)
        variant = "challenger" if rng.random() < weights["challenger"] / 100 else "champion"
        row = assignment(f"r{i}", variant, unit_hash=f"{unit:064x}", allocation=allocation_text(weights))
        row["created_at"] = NOW + timedelta(seconds=i)
        if variant == "challenger" and rng.random() < 0.2:
            row.update(served_variant="champion", fallback=True, error=True)
        if rng.random() < 0.05:
            row.update(pinned=True)
        if i < 10:
            row.update(allocation=None)
        assignments.append(row)
        if rng.random() < 0.8:
            runs.append(run(f"r{i}", rng.random() < 0.7, rng.randint(0, 4)))
    rng.shuffle(runs)
    with transaction(factory) as session:
        record_assignments(session, assignments)
        insert_runs(session, runs)
        for position, row in enumerate(runs):  # the order the rewards were recorded in
            session.execute(
                update(Run)
                .where(Run.id == row["id"])
                .values(changed_at=NOW + timedelta(minutes=10, seconds=position))
            )
    return assignments, runs


def test_the_reward_stream_keeps_the_assigned_variant_its_weights_and_the_recording_order(
    factory: sessionmaker[Session],
) -> None:
    assignments, runs = stored(factory)
    with transaction(factory) as session:
        stream = reward_stream(session, "exp")
    by_request = {row["request_id"]: row for row in assignments}
    expected = [
        by_request[row["request_id"]]
        for row in runs
        if not by_request[row["request_id"]]["pinned"] and by_request[row["request_id"]]["allocation"]
    ]
    assert len(stream) == len(expected)
    assert [stream.names[arm] for arm in stream.arm] == [row["variant"] for row in expected]
    challenger = stream.names.index("challenger")
    late = [row["allocation"] == allocation_text(LATE) for row in expected]
    assert stream.shares[:, challenger].tolist() == [0.5 if is_late else 0.05 for is_late in late]
    fallbacks = sum(row["fallback"] for row in expected)
    assert fallbacks > 0  # counted for the challenger that failed, not the champion that answered
    assert ((stream.reward >= 0) & (stream.reward <= 1)).all()


def test_allocation_epochs_count_each_unit_once_in_the_epoch_it_first_came(
    factory: sessionmaker[Session],
) -> None:
    assignments, _ = stored(factory)
    with transaction(factory) as session:
        epochs = allocation_epochs(session, "exp")
    first: dict[str, dict[str, object]] = {}
    for row in sorted(assignments, key=lambda row: (row["created_at"], row["request_id"])):
        if not row["pinned"]:
            first.setdefault(str(row["unit_hash"]), row)
    expected: dict[str, dict[str, int]] = {}
    for row in first.values():
        if row["allocation"]:
            counts = expected.setdefault(str(row["allocation"]), {})
            counts[str(row["variant"])] = counts.get(str(row["variant"]), 0) + 1
    assert [dict(epoch.weights) for epoch in epochs] == [EARLY, LATE]
    assert [dict(epoch.units) for epoch in epochs] == [
        expected[allocation_text(EARLY)],
        expected[allocation_text(LATE)],
    ]
    late_units = sum(expected[allocation_text(LATE)].values())
    late_requests = sum(1 for row in assignments[150:] if not row["pinned"])
    assert late_units < late_requests  # returning units are not counted again


def test_traffic_bundles_all_three_views(factory: sessionmaker[Session]) -> None:
    stored(factory)
    with transaction(factory) as session:
        found = traffic(session, "exp")
        assert set(found.variants) == {"champion", "challenger"}
        assert len(found.rewards) == len(reward_stream(session, "exp"))
        assert len(found.epochs) == 2
        empty = traffic(session, "nothing-yet")
    assert len(empty.rewards) == 0
    assert empty.epochs == ()
