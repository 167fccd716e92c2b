"""Suite-wide rules and shared fixtures.

A skipped test fails the run (CI must never pass on skipped work). The database fixtures run every
query path against a real PostgreSQL (a throwaway server the session starts) and against SQLite,
through ``empty_url``'s two parameters."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from controllers.store import migrate
from controllers.store.db import make_engine, session_factory
from devstack.objectstore import ObjectStore
from devstack.postgres import ThrowawayPostgres

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped)} test(s) were skipped; every test must run: {_skipped}", red=True
        )


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayPostgres]:
    # As root the server runs as the postgres user, who reaches its data through the folders above
    # it. Any pytest session that starts later makes pytest's own /tmp/pytest-of-root 0700 again,
    # which would lock this session's server out of its files mid-run (it stops with a PANIC): so
    # as root the data lives in a folder of its own instead.
    root = os.geteuid() == 0
    home = Path(tempfile.mkdtemp(prefix="kaizen-pg-")) if root else tmp_path_factory.mktemp("postgres")
    server = ThrowawayPostgres(home)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if root:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """A real S3-protocol server on loopback, authentication on (``devstack.objectstore``)."""
    store = ObjectStore(tmp_path_factory.mktemp("objectstore")).start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def bucket(object_store: ObjectStore) -> str:
    """A fresh bucket of the session's object store: its s3:// URI."""
    return object_store.create_bucket(f"kaizen-{uuid.uuid4().hex[:12]}")


def fresh_database(server: ThrowawayPostgres) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kaizen.db'}"
    return fresh_database(request.getfixturevalue("postgres"))


@pytest.fixture
def store_url(empty_url: str) -> str:
    migrate.upgrade(empty_url)
    return empty_url


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)
