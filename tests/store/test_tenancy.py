"""Tenancy in the store, on PostgreSQL and SQLite: ids, keys, policies, snapshots and reviews stay in
their namespace, and timestamps are stored as their UTC instant."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from controllers.data.pairs import MiningSettings
from controllers.store import ingest, policies, reviews
from controllers.store.db import transaction
from controllers.store.idempotency import idempotent_write
from controllers.store.mining import mine_track
from controllers.store.models import Feedback, PreferencePair, Run
from controllers.store.snapshot import SnapshotFilter, export_dpo, export_sft
from controllers.store.snapshot_files import file_part
from controllers.store.tracks import Track
from tests.store.helpers import T0, run

TESTS_ONLY = {"compileOk": 0.0, "testsPassed": 1.0, "errors": 0.0, "humanAccepted": 0.0}


def _pair(prompt: str, agent: str = "coder", **extra: Any) -> dict[str, Any]:
    row = {"prompt": prompt, "chosen": "good", "rejected": "bad", "agent": agent, "role": "coder"}
    return {**row, "source": "explicit", "created_at": T0, **extra}


def _rows(engine: Engine, *columns: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(select(*columns).order_by(*columns)).all()]


def test_the_same_id_in_two_namespaces_is_two_records(factory: sessionmaker[Session], engine: Engine) -> None:
    with transaction(factory) as session:
        assert ingest.insert_runs(session, [run("r1", "t1", "in a")], "team-a")["inserted"] == 1
        assert ingest.insert_runs(session, [run("r1", "t1", "in b")], "team-b")["inserted"] == 1
        ingest.insert_feedback(session, [_feedback("f1", "r1")], "team-a")
        ingest.insert_feedback(session, [_feedback("f1", "r1", thumbs=-1)], "team-b")
    assert _rows(engine, Run.namespace, Run.id, Run.output) == [
        ("team-a", "r1", "in a"),
        ("team-b", "r1", "in b"),
    ]
    # each verdict reached its own namespace's run only
    assert _rows(engine, Run.namespace, Run.human_accepted) == [("team-a", True), ("team-b", False)]
    assert _rows(engine, Feedback.namespace, Feedback.id) == [("team-a", "f1"), ("team-b", "f1")]


def _feedback(id: str, run_id: str, thumbs: int = 1) -> dict[str, Any]:
    return {"id": id, "created_at": T0, "run_id": run_id, "thumbs": thumbs, "categories": []}


def test_an_id_another_agent_holds_is_taken_and_a_retry_is_a_no_op(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(session, [run("r1", "t1", "mine"), run("r2", "t2", "theirs", agent="fixer")])
        ingest.insert_feedback(session, [_feedback("f1", "r1")])
    with transaction(factory) as session:  # the same records again: nothing new, nothing refused
        assert ingest.insert_runs(session, [run("r1", "t1", "mine")])["inserted"] == 0
        assert ingest.insert_feedback(session, [_feedback("f1", "r1")])["inserted"] == 0
    with pytest.raises(ingest.IdTaken) as taken, transaction(factory) as session:
        ingest.insert_runs(session, [run("new", "t3", "x"), run("r1", "t1", "overwrite?", agent="intruder")])
    assert taken.value.field == "runs[1].id"
    # a feedback id held by feedback on another agent's run is taken too
    with pytest.raises(ingest.IdTaken) as taken, transaction(factory) as session:
        ingest.insert_feedback(session, [_feedback("f1", "r2", thumbs=-1)])
    assert taken.value.field == "feedback[0].id"
    # the refused batches wrote nothing
    assert _rows(engine, Run.id, Run.agent) == [("r1", "coder"), ("r2", "fixer")]
    assert _rows(engine, Feedback.id, Feedback.run_id, Feedback.thumbs) == [("f1", "r1", 1)]


def test_feedback_resolves_runs_only_in_its_namespace(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(session, [{**run("r1", "t1", "o"), "request_id": "q1"}], "team-a")
    for reference in ((("feedback[0].runId", "r1", None)), ("feedback[0].requestId", None, "q1")):
        with pytest.raises(ingest.UnknownReference) as unknown, transaction(factory) as session:
            ingest.resolve_feedback(session, [reference], "team-b")
        assert unknown.value.field == reference[0]
    with transaction(factory) as session:
        assert ingest.resolve_feedback(session, [("f", None, "q1")], "team-a") == {"f": ("r1", "q1")}


def test_the_same_key_from_two_scopes_is_two_writes(factory: sessionmaker[Session], engine: Engine) -> None:
    def write_as(scope: str, output: str) -> Any:
        def write(session: Session) -> dict[str, Any]:
            row = run(ingest.derived_id("default", scope, "k1", "run", 0), "t1", output)
            return ingest.insert_runs(session, [row])

        return idempotent_write(
            factory, scope=scope, key="k1", endpoint="runs", payload_hash=output, write=write
        )

    first = write_as("kaizen:agent-a", "a")
    second = write_as("kaizen:agent-b", "b")  # another body: no conflict, it is another caller's key
    assert not first.replayed
    assert not second.replayed
    assert first.body["ids"] != second.body["ids"]
    assert write_as("kaizen:agent-a", "a").replayed
    assert sorted(output for (output,) in _rows(engine, Run.output)) == ["a", "b"]


def test_derived_ids_differ_by_namespace_and_scope() -> None:
    ids = {
        ingest.derived_id(namespace, scope, "k", "run", 0)
        for namespace in ("a", "b")
        for scope in ("kaizen:x", "kaizen:y")
    }
    assert len(ids) == 4
    assert ingest.derived_id("a", "kaizen:x", "k", "run", 0) == ingest.derived_id(
        "a", "kaizen:x", "k", "run", 0
    )


def test_a_policy_weighs_only_its_own_namespaces_runs(factory: sessionmaker[Session], engine: Engine) -> None:
    signals = {"compile_ok": False, "tests_passed": 2, "tests_total": 2}
    with transaction(factory) as session:
        policies.upsert_policy(session, "team-a", "coder", "coder", "", "", TESTS_ONLY)
        ingest.insert_runs(session, [run("r1", "t1", "o", **signals)], "team-a")
        ingest.insert_runs(session, [run("r1", "t1", "o", **signals)], "team-b")
    assert _rows(engine, Run.namespace, Run.reward) == [
        ("team-a", 1.0),
        ("team-b", 0.5),
    ]  # b: the default weights
    with transaction(factory) as session:  # a weights change recomputes its namespace's runs only
        changed = policies.upsert_policy(
            session, "team-b", "coder", "coder", "", "", {**TESTS_ONLY, "compileOk": 1.0, "testsPassed": 0.0}
        )
        assert changed == 1
        assert policies.upsert_policy(session, "team-a", "coder", "coder", "", "", TESTS_ONLY) == 0
    assert _rows(engine, Run.namespace, Run.reward) == [("team-a", 1.0), ("team-b", 0.0)]


def test_a_snapshot_reads_only_its_namespace_and_track(
    factory: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    with transaction(factory) as session:
        ingest.insert_pairs(session, [_pair("a-coder"), _pair("a-fixer", agent="fixer")], "team-a")
        ingest.insert_pairs(session, [_pair("b-coder"), _pair("a-coder")], "team-b")
        ok = {"ok": True, "minutes": 1}
        ingest.insert_runs(
            session,
            [run("r1", "t1", "a-run", **ok), run("r2", "t2", "a-fixer", agent="fixer", **ok)],
            "team-a",
        )
        ingest.insert_runs(session, [run("r1", "t1", "b-run", **ok)], "team-b")
    flt = SnapshotFilter(namespace="team-a", agent="coder")
    dpo = export_dpo(engine, tmp_path / "dpo", flt, eval_fraction=0.01)
    prompts = [
        json.loads(line)["prompt"] for name in ("train", "eval") for line in _lines(tmp_path / "dpo", name)
    ]
    assert prompts == ["a-coder"]
    assert dpo.train_rows + dpo.eval_rows == 1
    sft = export_sft(engine, tmp_path / "sft", flt, eval_fraction=0.01)
    outputs = [
        json.loads(line)["output"]
        for path in (tmp_path / "sft").glob("sft-*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert outputs == ["a-run"]
    assert sft.train_rows + sft.eval_rows == 1
    # a namespace with nothing in it exports nothing, whatever the others hold
    empty = export_dpo(engine, tmp_path / "none", SnapshotFilter(namespace="team-c"))
    assert empty.train_rows + empty.eval_rows == 0


def _lines(folder: Path, split: str) -> list[str]:
    return (folder / f"{split}.jsonl").read_text().splitlines()


def test_mining_reads_and_writes_only_its_namespace(factory: sessionmaker[Session], engine: Engine) -> None:
    attempts = [run("r1", "t1", "broken", ok=False), run("r2", "t1", "fixed", attempt=2, ok=True, minutes=1)]
    with transaction(factory) as session:
        ingest.insert_runs(session, [dict(r) for r in attempts], "team-a")
        ingest.insert_runs(session, [dict(r) for r in attempts], "team-b")
        mined = mine_track(session, Track("coder", namespace="team-a"), MiningSettings(), since=None)
    assert sum(mined.inserted.values()) >= 1
    assert {namespace for (namespace,) in _rows(engine, PreferencePair.namespace)} == {"team-a"}


def test_reviews_see_and_decide_only_their_namespaces(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        a = ingest.insert_pairs(session, [_pair("in a")], "team-a")["ids"][0]
        b = ingest.insert_pairs(session, [_pair("in b")], "team-b")["ids"][0]
    with transaction(factory) as session:
        assert [p.id for p in reviews.pending_reviews(session, namespaces=["team-a"]).pairs] == [a]
        assert len(reviews.pending_reviews(session, namespaces=None).pairs) == 2
    with pytest.raises(ingest.UnknownReference) as unknown, transaction(factory) as session:
        reviews.apply_reviews(session, [{"kind": "pair", "id": b, "decision": "approved"}], ["team-a"])
    assert unknown.value.field == "reviews[0].id"
    with transaction(factory) as session:
        reviews.apply_reviews(session, [{"kind": "pair", "id": a, "decision": "approved"}], ["team-a"])
        assert [p.id for p in reviews.pending_reviews(session).pairs] == [b]


def test_times_are_stored_as_their_utc_instant(factory: sessionmaker[Session], engine: Engine) -> None:
    kiribati = timezone(timedelta(hours=14))
    at = datetime(2024, 3, 1, 5, 0, tzinfo=kiribati)
    with transaction(factory) as session:
        ingest.insert_runs(session, [{**run("r1", "t1", "o"), "created_at": at}])
    with engine.connect() as connection:
        stored = connection.scalar(select(Run.created_at))
        # and a query by the instant finds it, on either store
        found = connection.scalar(
            select(func.count()).where(Run.created_at == datetime(2024, 2, 29, 15, tzinfo=UTC))
        )
    assert stored == at
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)
    assert found == 1


def test_a_time_with_no_utc_instant_is_refused_not_stored(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    with pytest.raises(StatementError), transaction(factory) as session:
        ingest.insert_runs(session, [{**run("r1", "t1", "o"), "created_at": year_one}])
    assert _rows(engine, Run.id) == []


def test_sft_exports_roles_that_are_not_file_names(
    factory: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    # a run's role is at most 128 characters in the store (SQLite does not enforce it)
    long_role = "r" * (300 if engine.dialect.name == "sqlite" else 128)
    roles = ["a/b", "a-b", "../../escape", "A/B", long_role, "coder"]
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [run(f"r{i}", f"t{i}", f"out {role}", ok=True, role=role) for i, role in enumerate(roles)],
        )
    snapshot = export_sft(engine, tmp_path / "sft", eval_fraction=0.01)
    assert snapshot.train_rows + snapshot.eval_rows == len(roles)
    files = sorted(path.name for path in (tmp_path / "sft").iterdir() if path.name.startswith("sft-"))
    assert len(files) == len(roles)  # one file per role: no two roles share one
    assert all(len(name) < 100 and "/" not in name for name in files)
    assert {"sft-coder-train.jsonl", "sft-a-b-train.jsonl"} <= set(files)
    by_output = {
        json.loads(line)["output"]: path.name
        for path in (tmp_path / "sft").glob("sft-*.jsonl")
        for line in path.read_text().splitlines()
    }
    assert by_output["out a/b"] == f"sft-{file_part('a/b')}-train.jsonl"
    assert not (tmp_path / "escape").exists()


def test_file_parts_are_plain_short_and_distinct() -> None:
    names = ["coder", "a/b", "a-b", "A-B", "a b", "..", "", "r" * 300, "r" * 301, "x_1"]
    parts = [file_part(name) for name in names]
    assert len(set(parts)) == len(names)
    assert file_part("coder") == "coder"
    assert all(len(part) <= 63 and "/" not in part and not part.startswith(".") for part in parts)
