"""Schema migrations: from empty, as upgrades with data in place, twice, and from two processes at once."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from controllers.store import (  # noqa: F401  (loop_objects and review_models: their tables join Base's metadata)
    loop_objects,
    migrate,
    review_models,
)
from controllers.store.db import make_engine
from controllers.store.models import Base


def test_upgrade_from_empty_creates_exactly_the_models_tables(empty_url: str) -> None:
    assert migrate.upgrade(empty_url) == migrate.head_revision()
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_upgrading_twice_is_a_no_op(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    before = sorted(inspect(engine).get_table_names())
    engine.dispose()
    assert migrate.upgrade(empty_url) == migrate.head_revision()
    engine = make_engine(empty_url)
    assert sorted(inspect(engine).get_table_names()) == before
    engine.dispose()


def test_upgrade_from_the_first_revision_keeps_existing_rows(empty_url: str) -> None:
    assert migrate.upgrade(empty_url, "0001") == "0001"
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (id, created_at, agent, role, task_id, task_family, model_variant, prompt_variant,"
                " attempt, prompt, output, reward) VALUES ('r1', :now, 'coder', 'coder', 't', '', '', '', 1, 'p', 'o', 0.5)"
            ),
            {"now": datetime.now(UTC)},
        )
    assert migrate.upgrade(empty_url) == migrate.head_revision()
    with engine.connect() as connection:
        row = connection.execute(text("SELECT id, reward, weights_hash FROM runs")).one()
        assert tuple(row) == ("r1", 0.5, None)
        # a run's last change starts as its creation, so that mining can resume from it
        created, changed = connection.execute(text("SELECT created_at, changed_at FROM runs")).one()
        assert changed == created is not None
        assert "policies" in inspect(connection).get_table_names()
    engine.dispose()


def test_two_concurrent_db_upgrades_end_with_one_schema_and_no_error(empty_url: str) -> None:
    command = [sys.executable, "-m", "controllers.cli.main", "db", "upgrade", "--database-url", empty_url]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outcomes = [(*process.communicate(timeout=120), process.returncode) for process in processes]
    for stdout, stderr, code in outcomes:
        assert code == 0, stderr
        assert f"schema at revision {migrate.head_revision()}" in stdout
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert versions == [migrate.head_revision()]


def _insert(connection: Any, table: str, **values: Any) -> None:
    columns = ", ".join(values)
    connection.execute(
        text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + c for c in values)})"), values
    )


def _old_run(connection: Any, id: str, agent: str, role: str, now: datetime) -> None:
    _insert(
        connection, "runs", id=id, created_at=now, changed_at=now, agent=agent, role=role, task_id="t",
        task_family="", model_variant="", prompt_variant="", attempt=1, prompt="p", output="o",
    )  # fmt: skip


def _old_shaped_rows(url: str) -> None:
    """Rows as revision 0004 held them: one id space, the operator's policies keyed ``<ns>.<name>``."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    with engine.begin() as connection:
        _old_run(connection, "r-coder", "coder", "coder", now)
        _old_run(connection, "r-fixer", "fixer", "fixer", now)
        _old_run(connection, "r-other", "other", "", now)
        _insert(connection, "feedback", id="f1", created_at=now, run_id="r-coder", author="", categories="[]")
        _insert(connection, "annotations", id="a1", created_at=now, run_id="r-fixer", state="pending",
                reason="", labels="[]", reviewer="", note="")  # fmt: skip
        for pair, agent in (("p-coder", "coder"), ("p-other", "other")):
            _insert(connection, "preference_pairs", id=pair, created_at=now, agent=agent, role="", task_family="",
                    prompt="p", chosen="c", rejected="r", source="explicit", review_state="pending")  # fmt: skip
        for name, agent, role in (
            ("team-a.coder-dpo", "coder", ""),
            ("team-b.fixer", "", "fixer"),
            ("plain", "x", ""),
        ):
            _insert(connection, "policies", name=name, agent=agent, role=role, task_family="", weights="{}",
                    updated_at=now)  # fmt: skip
        _insert(connection, "experiment_assignments", request_id="q1", created_at=now, experiment="team-a/exp",
                variant="v", unit_hash="h", pinned=False, fallback=False, served_variant="v", error=False)  # fmt: skip
        _insert(connection, "idempotency_keys", key="k1", endpoint="runs", request_hash="h", status_code=200,
                response="{}", created_at=now)  # fmt: skip
    engine.dispose()


def test_upgrading_old_rows_puts_each_in_its_namespace(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrate.upgrade(empty_url, "0004") == "0004"
    _old_shaped_rows(empty_url)
    monkeypatch.setenv("KAIZEN_DATA_NAMESPACE", "legacy")
    assert migrate.upgrade(empty_url) == migrate.head_revision()
    engine = make_engine(empty_url)
    with engine.connect() as connection:

        def rows(query: str) -> set[tuple[Any, ...]]:
            return {tuple(row) for row in connection.execute(text(query))}

        # the operator's policies move to their namespace under their own name, the gateway's stay
        assert rows("SELECT namespace, name FROM policies") == {
            ("team-a", "coder-dpo"), ("team-b", "fixer"), ("legacy", "plain"),
        }  # fmt: skip
        # and the runs and pairs of their tracks with them; the rest go to the data namespace
        assert rows("SELECT namespace, id FROM runs") == {
            ("team-a", "r-coder"), ("team-b", "r-fixer"), ("legacy", "r-other"),
        }  # fmt: skip
        assert rows("SELECT namespace, id FROM preference_pairs") == {
            ("team-a", "p-coder"),
            ("legacy", "p-other"),
        }
        # feedback and annotations follow their runs; an assignment its experiment
        assert rows("SELECT namespace, id FROM feedback") == {("team-a", "f1")}
        assert rows("SELECT namespace, id FROM annotations") == {("team-b", "a1")}
        assert rows("SELECT namespace, request_id FROM experiment_assignments") == {("team-a", "q1")}
        # an old key is nobody's: no caller's scope is empty
        assert rows("SELECT scope, key FROM idempotency_keys") == {("", "k1")}
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    # the new keys hold: the same run id in another namespace is another run, and its feedback follows it
    with engine.begin() as connection:
        _old_run_in(connection, "other-ns", "r-coder")
        connection.execute(text("DELETE FROM runs WHERE namespace = 'team-a' AND id = 'r-coder'"))
        assert rows_in(connection, "SELECT namespace, id FROM runs WHERE id = 'r-coder'") == {
            ("other-ns", "r-coder")
        }
        assert rows_in(connection, "SELECT id FROM feedback") == set()  # cascaded with its run
    engine.dispose()


def _old_run_in(connection: Any, namespace: str, id: str) -> None:
    now = datetime.now(UTC)
    _insert(
        connection, "runs", namespace=namespace, id=id, created_at=now, changed_at=now, agent="coder", role="",
        task_id="t", task_family="", model_variant="", prompt_variant="", attempt=1, prompt="p", output="o",
    )  # fmt: skip


def rows_in(connection: Any, query: str) -> set[tuple[Any, ...]]:
    return {tuple(row) for row in connection.execute(text(query))}


def test_the_data_namespace_must_be_a_namespace(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0004")
    with pytest.raises(ValueError, match="DNS-1123"):
        migrate.upgrade(empty_url, data_namespace="Not_A_Namespace")
    assert current_revision_of(empty_url) == "0004"


def current_revision_of(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return migrate.current_revision(engine)
    finally:
        engine.dispose()


def test_upgrading_to_0007_gives_assignments_the_route_that_names_their_experiment(empty_url: str) -> None:
    assert migrate.upgrade(empty_url, "0006") == "0006"
    engine = make_engine(empty_url)
    now = datetime.now(UTC)
    config = {"namespace": "team", "name": "coder", "experiment": "team/exp", "variants": []}
    with engine.begin() as connection:
        _insert(connection, "routes", namespace="team", name="coder", config=json.dumps(config),
                config_hash="h", version=1, updated_at=now)  # fmt: skip
        for namespace, request_id, experiment in (
            ("team", "q1", "team/exp"),
            ("other", "q2", "team/exp"),  # another namespace's request is not the route's
            ("team", "q3", "team/settled"),  # no route names this experiment any more
        ):
            _insert(connection, "experiment_assignments", namespace=namespace, request_id=request_id,
                    created_at=now, experiment=experiment, variant="v", unit_hash="h", pinned=False,
                    fallback=False, served_variant="v", error=False)  # fmt: skip
        _old_run_in(connection, "team", "r1")
        _insert(connection, "feedback", namespace="team", id="f1", created_at=now, run_id="r1", author="",
                categories="[]")  # fmt: skip
    assert migrate.upgrade(empty_url) == migrate.head_revision()
    with engine.connect() as connection:
        assert rows_in(connection, "SELECT request_id, route FROM experiment_assignments") == {
            ("q1", "coder"), ("q2", None), ("q3", None),
        }  # fmt: skip
        assert rows_in(connection, "SELECT id, run_id, request_id FROM feedback") == {("f1", "r1", None)}
    with engine.begin() as connection:  # feedback on a request alone is a row without a run now
        _insert(connection, "feedback", namespace="team", id="f2", created_at=now, request_id="q1", author="",
                categories="[]")  # fmt: skip
    engine.dispose()
