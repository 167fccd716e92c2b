"""What every gateway route shares (settings, sessions, metrics, the router), as FastAPI dependencies.

``create_app`` builds one ``Gateway`` and puts it on ``app.state``; routes in their own modules ask
for it (``Shared``), for the caller (``Caller``: a verified bearer token, else 401) and for the
write's ``Idempotency-Key`` (``Key``, else 400) through ``Depends``, so no route closes over
``create_app``'s locals and each router module can be read and tested on its own.

(No ``from __future__ import annotations`` here: FastAPI reads the dependency annotations at runtime.)
"""

import os
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.routes import parse_host_patterns, pattern_problems
from controllers.gateway import auth
from controllers.gateway.errors import ApiError
from controllers.gateway.metrics import Metrics
from controllers.gateway.router_state import RouterState

ALLOWED_HOSTS_ENV = "KAIZEN_ROUTE_ALLOWED_HOSTS"
MAX_BODY_ENV = "KAIZEN_MAX_BODY_BYTES"
PROXY_MAX_BODY_ENV = "KAIZEN_PROXY_MAX_BODY_BYTES"


@dataclass
class GatewaySettings:
    database_url: str | None = None
    token_secret: str = field(default_factory=lambda: os.environ.get("KAIZEN_TOKEN_SECRET", ""))
    retry_after_seconds: int = 2
    route_refresh_seconds: float = 0.25  # how stale a replica's routes may get (a cheap version scan)
    # Upstream hosts a route may send traffic to: comma-separated globs (DNS names), IP addresses or
    # CIDR networks (IP literals), "!" in front to deny; by default in-cluster Service names only.
    route_allowed_hosts: tuple[str, ...] = field(
        default_factory=lambda: parse_host_patterns(os.environ.get(ALLOWED_HOSTS_ENV, ""))
    )
    # The largest request body the ingest API reads (a bigger batch is a 413: split it).
    max_body_bytes: int = field(default_factory=lambda: int(os.environ.get(MAX_BODY_ENV, 4 * 1024 * 1024)))
    # The largest request body the proxy (/openai/...) reads.
    proxy_max_body_bytes: int = field(
        default_factory=lambda: int(os.environ.get(PROXY_MAX_BODY_ENV, 8 * 1024 * 1024))
    )

    def __post_init__(self) -> None:
        if not self.token_secret:
            raise ValueError("set KAIZEN_TOKEN_SECRET (the key that signs gateway tokens)")
        problems = pattern_problems(self.route_allowed_hosts)
        if problems:
            raise ValueError(f"{ALLOWED_HOSTS_ENV}: {'; '.join(problems)}")
        for env, value in (
            (MAX_BODY_ENV, self.max_body_bytes),
            (PROXY_MAX_BODY_ENV, self.proxy_max_body_bytes),
        ):
            if value < 1:
                raise ValueError(f"{env} must be a positive number of bytes, not {value}")


@dataclass(frozen=True)
class Gateway:
    """One app's shared parts; ``app.state.gateway``."""

    settings: GatewaySettings
    factory: sessionmaker[Session]
    metrics: Metrics
    router: RouterState


async def gateway(request: Request) -> Gateway:
    """The app's ``Gateway`` (async: a dependency this cheap should not take a worker thread)."""
    shared: Gateway = request.app.state.gateway
    return shared


Shared = Annotated[Gateway, Depends(gateway)]
_bearer = HTTPBearer(auto_error=False)


def principal(
    shared: Shared, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> auth.Principal:
    try:
        return auth.verify(shared.settings.token_secret, credentials.credentials if credentials else None)
    except auth.InvalidToken as error:
        raise ApiError(401, str(error), headers={"WWW-Authenticate": "Bearer"}) from error


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> str:
    if not key:
        raise ApiError(
            400,
            "the Idempotency-Key header is required on writes: send a unique key per "
            "logical request and the same key on every retry of it",
        )
    return key


Caller = Annotated[auth.Principal, Depends(principal)]
Key = Annotated[str, Depends(idempotency_key)]
