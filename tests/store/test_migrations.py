"""Schema migrations: from empty, as upgrades with data in place, twice, and from two processes at once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from controllers.store import migrate
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
