"""What every gateway route shares (settings, sessions, metrics, the router), as FastAPI dependencies.

``create_app`` builds one ``Gateway`` and puts it on ``app.state``; routes in their own modules ask
for it (``Shared``), for the caller (``Caller``: the identity ``guard.RequireIdentity`` established
from the headers before any body was read) and for the write's ``Idempotency-Key`` (``Key``, else
400) through ``Depends``, so no route closes over ``create_app``'s locals and each router module can
be read and tested on its own. ``authorize`` asks whether the caller may take an action (403 if not).

(No ``from __future__ import annotations`` here: FastAPI reads the dependency annotations at runtime.)
"""

import os
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.identity import Principal
from controllers.api.routes import parse_host_patterns, pattern_problems
from controllers.decisions.access import Action
from controllers.gateway import auth
from controllers.gateway.errors import ApiError
from controllers.gateway.identity import Authenticator, AuthUnavailable, Forbidden
from controllers.gateway.metrics import Metrics
from controllers.gateway.router_state import RouterState
from controllers.gateway.widget import ORIGINS_ENV, parse_origins

ALLOWED_HOSTS_ENV = "KAIZEN_ROUTE_ALLOWED_HOSTS"
MAX_BODY_ENV = "KAIZEN_MAX_BODY_BYTES"
PROXY_MAX_BODY_ENV = "KAIZEN_PROXY_MAX_BODY_BYTES"
REVIEW_TTL_ENV = "KAIZEN_REVIEW_TTL_SECONDS"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


@dataclass
class GatewaySettings:
    database_url: str | None = None
    # The keys Kaizen tokens are signed with: ``token_secret`` alone (key id ``default``), or the
    # keyring from the environment (``auth.Keyring.from_env``: a directory of keys for rotation).
    token_secret: str = field(default_factory=lambda: os.environ.get("KAIZEN_TOKEN_SECRET", ""))
    keyring: auth.Keyring | None = None
    keyring_env: dict[str, str] = field(
        default_factory=dict, repr=False
    )  # where a key directory is reloaded from
    revoked_tokens_file: str | None = field(
        default_factory=lambda: os.environ.get("KAIZEN_TOKEN_REVOKED_FILE")
    )
    # Accept ServiceAccount tokens (TokenReview + SubjectAccessReview); ``kubeconfig`` None is in-cluster.
    kubernetes_auth: bool = field(default_factory=lambda: _env_flag("KAIZEN_KUBERNETES_AUTH"))
    kubeconfig: str | None = field(default_factory=lambda: os.environ.get("KUBECONFIG"))
    token_audience: str = field(
        default_factory=lambda: os.environ.get("KAIZEN_TOKEN_AUDIENCE", "kaizen-gateway")
    )
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
    # How long a reviewer holds a reserved item before it returns to the queue.
    review_ttl_seconds: int = field(default_factory=lambda: int(os.environ.get(REVIEW_TTL_ENV, 300)))
    # Origins whose pages may post feedback with the embeddable widget (exact, comma-separated); none by default.
    widget_origins: tuple[str, ...] = field(
        default_factory=lambda: parse_origins(os.environ.get(ORIGINS_ENV, ""))
    )

    def __post_init__(self) -> None:
        if self.keyring is None:
            env = dict(os.environ)
            if self.token_secret:
                env["KAIZEN_TOKEN_SECRET"] = self.token_secret
            if not env.get("KAIZEN_TOKEN_SECRET") and not env.get("KAIZEN_TOKEN_KEYS_DIR"):
                raise ValueError(
                    "set KAIZEN_TOKEN_SECRET or KAIZEN_TOKEN_KEYS_DIR (the keys that sign gateway tokens)"
                )
            self.keyring = auth.Keyring.from_env(env)
            self.keyring_env = env
        problems = pattern_problems(self.route_allowed_hosts)
        if problems:
            raise ValueError(f"{ALLOWED_HOSTS_ENV}: {'; '.join(problems)}")
        for env_name, value in (
            (MAX_BODY_ENV, self.max_body_bytes),
            (PROXY_MAX_BODY_ENV, self.proxy_max_body_bytes),
            (REVIEW_TTL_ENV, self.review_ttl_seconds),
        ):
            if value < 1:
                raise ValueError(f"{env_name} must be a positive number, not {value}")


@dataclass(frozen=True)
class Gateway:
    """One app's shared parts; ``app.state.gateway``."""

    settings: GatewaySettings
    factory: sessionmaker[Session]
    metrics: Metrics
    router: RouterState
    authenticator: Authenticator


async def gateway(request: Request) -> Gateway:
    """The app's ``Gateway`` (async: a dependency this cheap should not take a worker thread)."""
    shared: Gateway = request.app.state.gateway
    return shared


Shared = Annotated[Gateway, Depends(gateway)]
# Only for the OpenAPI document (every /v1 call needs a bearer token): ``guard.RequireIdentity``
# has already checked it before the body was read.
_bearer = HTTPBearer(auto_error=False, description="A Kaizen token (kz2.) or a ServiceAccount token")


async def principal(request: Request, _: Annotated[object, Depends(_bearer)]) -> Principal:
    found: Principal | None = getattr(request.state, "principal", None)
    if found is None:  # a route outside the guard's paths asked for a caller: refuse, never assume
        raise ApiError(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return found


async def authorize(
    shared: Gateway, caller: Principal, action: Action, namespace: str, name: str | None = None
) -> None:
    """403 naming why, when ``caller`` may not take ``action`` in ``namespace`` (on ``name``)."""
    try:
        await shared.authenticator.authorize(caller, action, namespace, name)
    except Forbidden as error:
        raise ApiError(403, str(error), [{"field": "Authorization", "message": str(error)}]) from error
    except AuthUnavailable as error:
        raise ApiError(
            503, str(error), headers={"Retry-After": str(shared.settings.retry_after_seconds)}
        ) from error


def home_namespace(caller: Principal, given: str | None) -> str:
    """The namespace a write goes to: the one given, else the caller's only namespace (422 if ambiguous)."""
    if given:
        return given
    if len(caller.namespaces) == 1 and caller.namespaces[0] != "*":
        return caller.namespaces[0]
    message = "namespace is required: the caller may act in several namespaces"
    raise ApiError(422, message, [{"field": "namespace", "message": message}])


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


Caller = Annotated[Principal, Depends(principal)]
Key = Annotated[str, Depends(idempotency_key)]
