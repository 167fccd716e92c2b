"""The assignment recorder: a bounded buffer while the store is away, every kept row written once it is back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from controllers.gateway.recorder import AssignmentRecorder, Served
from controllers.store import migrate
from controllers.store.db import make_engine, session_factory
from controllers.store.models import Assignment


def served(index: int) -> Served:
    usage = {"prompt_tokens": 10, "completion_tokens": index, "total_tokens": 10 + index}
    if index % 2:  # a stream: the usage chunk comes last, before [DONE]
        body = f"data: {json.dumps({'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode()
    else:
        body = json.dumps({"choices": [{"text": "x"}], "usage": usage}).encode()
    return Served(
        request_id=f"req-{index}",
        created_at=datetime.now(UTC),
        namespace="default",
        experiment="exp",
        variant="challenger",
        served_variant="challenger",
        unit_hash="0" * 64,
        pinned=False,
        fallback=False,
        status_code=200,
        error=False,
        error_message=None,
        latency_ms=12.5,
        body=body,
        streamed=bool(index % 2),
    )


def test_rows_wait_in_a_bounded_buffer_while_the_store_is_away_and_are_written_when_it_returns(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "not-yet"  # SQLite cannot open a file in a folder that does not exist
    url = f"sqlite:///{folder / 'kaizen.db'}"
    engine = make_engine(url)
    registry = CollectorRegistry()
    recorder = AssignmentRecorder(session_factory(engine), registry, max_pending=5)

    async def scenario() -> tuple[bool, int, bool]:
        for index in range(8):
            recorder.add(served(index))
        failed = await recorder.flush()
        kept = recorder.pending
        folder.mkdir()
        migrate.upgrade(url)
        return failed, kept, await recorder.flush()

    assert asyncio.run(scenario()) == (False, 5, True)
    assert registry.get_sample_value("kaizen_router_assignments_dropped_total") == 3
    assert registry.get_sample_value("kaizen_router_assignment_flush_failures_total") == 1
    assert registry.get_sample_value("kaizen_router_assignments_written_total") == 5
    assert registry.get_sample_value("kaizen_router_assignments_pending") == 0
    with Session(engine) as session:
        rows = session.execute(select(Assignment.request_id, Assignment.cost_tokens)).all()
    engine.dispose()
    assert sorted(rows) == [(f"req-{i}", 10 + i) for i in range(5)]
