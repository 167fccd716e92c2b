"""The security tier: real gateway processes on both stores, a real API server for ServiceAccounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controllers.store import migrate
from controllers.store.db import make_engine
from devstack import identities
from devstack.controlplane import ControlPlane
from devstack.gateway import GatewayProcess
from devstack.postgres import ThrowawayPostgres
from devstack.upstream import UpstreamProcess
from tests.conftest import fresh_database
from tests.security.gateway_world import SECRET, World, identities_for

# Loopback is where this tier's upstream runs; the default allows in-cluster Service names only.
ALLOWED_HOSTS = "127.0.0.1"


@pytest.fixture(scope="session")
def security_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("security-plane"))
    plane.start()
    try:
        identities.install_gateway_roles(plane)
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def callers(security_plane: ControlPlane) -> dict[str, dict[str, str]]:
    return identities_for(security_plane)


@pytest.fixture(scope="session")
def security_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamProcess]:
    process = UpstreamProcess(tmp_path_factory.mktemp("security-upstream") / "upstream.log")
    process.start()
    yield process
    process.stop()


def store_for(kind: str, directory: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'kaizen.db'}"
    else:
        postgres: ThrowawayPostgres = request.getfixturevalue("postgres")
        url = fresh_database(postgres)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def security_world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    security_plane: ControlPlane,
    callers: dict[str, dict[str, str]],
    security_upstream: UpstreamProcess,
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp(f"security-{request.param}")
    url = store_for(request.param, directory, request)
    gateway = GatewayProcess(
        url,
        SECRET,
        directory / "gateway.log",
        kubeconfig=security_plane.kubeconfig,
        route_allowed_hosts=ALLOWED_HOSTS,
    )
    gateway.start()
    engine = make_engine(url)
    try:
        world = World(gateway, engine, security_upstream.base(), callers)
        world.seed()
        yield world
    finally:
        engine.dispose()
        gateway.stop()
