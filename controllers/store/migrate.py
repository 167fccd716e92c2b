"""Schema upgrades with Alembic, safe to run twice and from several processes at once.

PostgreSQL: the upgrade runs on a connection holding a session advisory lock, so a second process
waits, then finds the schema at head and does nothing. SQLite: the same through an exclusive file
lock beside the database file.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from controllers.store.db import is_sqlite, make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK_ID = 0x6B61697A656E  # "kaizen"


def _config(connection: Connection | None = None, data_namespace: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    if data_namespace:
        config.attributes["data_namespace"] = data_namespace
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    if is_sqlite(engine):
        database = engine.url.database or ""
        lock_path = Path(f"{database}.migrate.lock") if database and database != ":memory:" else None
        if lock_path is None:
            with engine.connect() as connection:
                yield connection
            return
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with engine.connect() as connection:
                yield connection
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        connection.commit()
        try:
            yield connection
        finally:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
            connection.commit()


def upgrade(url: str | None = None, revision: str = "head", data_namespace: str | None = None) -> str | None:
    """Bring the schema to ``revision``; returns the revision the database is at afterwards.

    ``data_namespace``: where rows written before records had namespaces go (revision 0005; else
    ``KAIZEN_DATA_NAMESPACE``, else ``default``)."""
    engine = make_engine(url)
    try:
        with _exclusive(engine) as connection:
            command.upgrade(_config(connection, data_namespace), revision)
            connection.commit()
        return current_revision(engine)
    finally:
        engine.dispose()
