"""Where ``kaizen experiment report`` reads an Experiment's traffic: the gateway's API, or a store offline.

The gateway (``GET /v1/experiments/{namespace}/{name}/series``, ``controllers.gateway
.experiments_api``) is the normal way: a person on call holds a token, not the store's credentials.
The URL is ``--gateway`` / ``KAIZEN_GATEWAY_URL``, else the local stack's; the token is ``--token``
/ ``KAIZEN_TOKEN``, else, against the local stack only, a ten-minute reviewer token signed with its
key (``controllers.cli.localstack``). Every refusal says which token would be taken.

``--database-url`` reads a store directly, for an offline copy. It opens only a database that is
there: a SQLite path that does not exist is "no database at ...", never a new empty file.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controllers.cli import localstack

if TYPE_CHECKING:
    from controllers.decisions.experiments.report import Series

LOCAL_TOKEN_SECONDS = 600
GIVEN = "the token of --token / KAIZEN_TOKEN"
GATEWAY_TIMEOUT = 30.0


class SourceError(Exception):
    """Why the traffic could not be read, as a sentence that says what to do."""


@dataclass(frozen=True)
class Routed:
    """The route carrying the Experiment's traffic: its champion and current weights."""

    champion: str
    weights: dict[str, int]


@dataclass(frozen=True)
class Gateway:
    url: str
    token: str
    where: str  # how the report found them, for messages

    def describe(self) -> str:
        return f"the gateway at {self.url}"


def gateway_for(url: str | None, token: str | None, namespace: str) -> Gateway:
    """The gateway and token to read with: the flags and environment, else the local stack's."""
    local_url = localstack.gateway_url()
    chosen = (url or local_url or "").rstrip("/")
    if not chosen:
        raise SourceError(
            "no gateway to read the traffic from: pass --gateway URL or set KAIZEN_GATEWAY_URL"
            " (`kaizen status` prints the local stack's), or read a store with --database-url"
        )
    if token:
        return Gateway(chosen, token.strip(), GIVEN)
    keys = localstack.keys_dir()
    if keys is None or local_url is None or chosen != local_url.rstrip("/"):
        raise SourceError(
            f"no token for {chosen}: pass --token or set KAIZEN_TOKEN to a reviewer token of namespace"
            f" {namespace} (`kaizen token create --subject <you> --role reviewer -n {namespace} --ttl 12h`"
            " where the gateway's keys are), or to a ServiceAccount token RBAC lets get"
            " experiments.gateway.kaizen.dev (the chart's <release>-gateway-reviewer role)"
        )
    from controllers.api.identity import Role
    from controllers.gateway import auth

    keyring = auth.Keyring.from_env({"KAIZEN_TOKEN_KEYS_DIR": str(keys)})
    try:
        subject = f"{getpass.getuser()}-kaizen-report"
    except (KeyError, OSError):  # no login name (a bare container): the token still says what it is for
        subject = "kaizen-report"
    minted = auth.issue(keyring, subject, LOCAL_TOKEN_SECONDS, role=Role.REVIEWER, namespaces=[namespace])
    return Gateway(chosen, minted, f"a {LOCAL_TOKEN_SECONDS // 60}-minute reviewer token from {keys}")


def from_gateway(
    gateway: Gateway, namespace: str, name: str, buckets: int, until: datetime | None
) -> tuple[Routed | None, Series | None]:
    """The route and the series the gateway answers with (SourceError naming what to do)."""
    import httpx

    from controllers.gateway.experiments_api import decode

    params: dict[str, Any] = {"buckets": buckets}
    if until is not None:
        params["until"] = until.isoformat()
    path = f"{gateway.url}/v1/experiments/{namespace}/{name}/series"
    try:
        answer = httpx.get(
            path,
            params=params,
            headers={"Authorization": f"Bearer {gateway.token}"},
            timeout=GATEWAY_TIMEOUT,
        )
    except httpx.HTTPError as error:
        raise SourceError(
            f"cannot reach {gateway.describe()} ({type(error).__name__}): check --gateway or"
            " KAIZEN_GATEWAY_URL (`kaizen status` prints the local stack's)"
        ) from error
    if answer.status_code != 200:
        raise SourceError(_refusal(gateway, answer.status_code, _reason(answer), namespace))
    try:
        route, series = decode(answer.json())
    except ValueError as error:
        raise SourceError(f"{gateway.describe()} answered something that is not a series: {error}") from error
    return (Routed(route.champion, dict(route.weights)) if route else None), series


def _reason(answer: Any) -> str:
    try:
        body = answer.json()
    except ValueError:
        return str(answer.text)[:200]
    return str(body.get("error") or body.get("detail") or body)[:300] if isinstance(body, dict) else str(body)


def _refusal(gateway: Gateway, status: int, reason: str, namespace: str) -> str:
    """What a refusal means and which token or setting fixes it."""
    create = f"kaizen token create --subject <you> --role reviewer -n {namespace}"
    if status == 401:
        return (
            f"{gateway.describe()} did not accept {gateway.where} (401): {reason}. Create one with"
            f" `{create}` and pass it with --token or KAIZEN_TOKEN"
        )
    if status == 403:
        return (
            f"{gateway.describe()} refused {gateway.where} (403): {reason}. Reading an experiment takes a"
            f" reviewer or operator token of namespace {namespace} (`{create}`), or a ServiceAccount"
            " bound to the chart's <release>-gateway-reviewer role"
        )
    if status == 404:
        return f"{gateway.describe()} has no experiments API ({reason}): upgrade the gateway"
    if status == 503:
        return f"{gateway.describe()} cannot reach its store right now ({reason}): retry shortly"
    return f"{gateway.describe()} answered {status}: {reason}"


def from_store(
    database_url: str, namespace: str, name: str, buckets: int, until: datetime | None
) -> tuple[Routed | None, Series | None]:
    """The route and series read from a store that exists (SourceError when it does not)."""
    from sqlalchemy.exc import DBAPIError

    from controllers.api.routes import experiment_key
    from controllers.store import migrate
    from controllers.store.db import StoreUnavailable, make_engine, session_factory, transaction
    from controllers.store.experiment_series import experiment_series, find_route

    _must_exist(database_url)
    engine = make_engine(database_url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        if migrate.current_revision(engine) is None:
            raise SourceError(
                f"the database at {shown} holds no Kaizen store (no schema): --database-url must name"
                " the store the gateway writes to"
            )
        with transaction(session_factory(engine)) as session:
            route = find_route(session, namespace, name)
            series = experiment_series(session, experiment_key(namespace, name), buckets=buckets, until=until)
    except (StoreUnavailable, DBAPIError) as error:
        first_line = str(error).splitlines()[0]
        raise SourceError(f"cannot read the store at {shown}: {first_line}") from error
    finally:
        engine.dispose()
    return (
        Routed(route.champion.name, {v.name: v.weight for v in route.variants}) if route else None
    ), series


def _must_exist(database_url: str) -> None:
    """A SQLite URL must name a file that is there: opening one that is not would create it, empty."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if not url.drivername.startswith("sqlite"):
        return
    path = url.database or ""
    if not path or path == ":memory:" or not Path(path).is_file():
        raise SourceError(
            f"no database at {path or 'an in-memory SQLite'}: --database-url must name the store the"
            " gateway writes to (or leave it out to read through the gateway)"
        )
