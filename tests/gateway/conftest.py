"""The gateway tier: the real app on the real databases (in process), or as a process the test can kill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.gateway.app import GatewaySettings, create_app

SECRET = "test-secret-0123456789"


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    app = create_app(GatewaySettings(database_url=store_url, token_secret=SECRET))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


@pytest.fixture
def headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue(SECRET, 'tester', 3600, role=Role.ADMIN)}"}
