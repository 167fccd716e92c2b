"""Engines and sessions for the experience store: PostgreSQL (psycopg 3) in production, SQLite embedded.

``KAIZEN_DATABASE_URL`` names the database; without it the embedded default is a SQLite file under
``.kaizen/``. Connection failures surface as ``StoreUnavailable`` so that callers (the gateway) can
answer 503 with Retry-After instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Insert

DEFAULT_SQLITE = Path(".kaizen") / "kaizen.db"


class StoreUnavailable(RuntimeError):
    """The database cannot be reached right now; retrying later may succeed."""


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, then ``KAIZEN_DATABASE_URL``, then the embedded SQLite file."""
    if url:
        return url
    if env := os.environ.get("KAIZEN_DATABASE_URL"):
        return env
    DEFAULT_SQLITE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE}"


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    url = database_url(url)
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_timeout", 5)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("connect_timeout", 3)
    return create_engine(url, connect_args=connect_args, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means "cannot reach the database right now" rather than "bad statement".

    DB-API OperationalError and InterfaceError are, by the DB-API's own definition, failures outside
    the program's control (lost connection, server shutting down or starting up); a pool that cannot
    hand out a connection in time is the same condition seen from this side.
    """
    if isinstance(error, PoolTimeout):
        return True
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    return False


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction; connection failures become ``StoreUnavailable`` (after rolling back)."""
    try:
        with factory() as session, session.begin():
            yield session
    except (DBAPIError, PoolTimeout) as error:
        if is_unavailable(error):
            raise StoreUnavailable(str(error).splitlines()[0]) from error
        raise


def insert_ignoring_duplicates(session: Session, table: Table | type[Any]) -> Insert:
    """An INSERT that skips rows whose key exists (``ON CONFLICT DO NOTHING``), in the session's dialect."""
    target = table.__table__ if hasattr(table, "__table__") else table
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement: Insert = module.insert(target).on_conflict_do_nothing()
    return statement
