"""``kaizen token create|inspect``: Kaizen bearer tokens for agents, reviewers and operators outside the cluster.

Inside the cluster a ServiceAccount token does the same job, governed by RBAC (docs/security.md).
``inspect`` shows what a token carries (its id is what the revocation list names).

The keys: ``--keys-dir`` (or ``KAIZEN_TOKEN_KEYS_DIR``, the gateway's mounted Secret) and/or
``KAIZEN_TOKEN_SECRET``, as the gateway reads them. With neither, the local stack's key
(``<state>/token-keys``, see ``controllers.cli.localstack``), so that after ``kaizen up`` a plain
``kaizen token create --subject alice --role reviewer -n default`` makes a token its gateway takes.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controllers.cli import localstack
from controllers.cli.store import _fail

if TYPE_CHECKING:
    from controllers.gateway.auth import Keyring

token_app = typer.Typer(help="Issue and inspect bearer tokens for the gateway.", no_args_is_help=True)


KeysDir = Annotated[
    Path | None,
    typer.Option(
        "--keys-dir",
        envvar="KAIZEN_TOKEN_KEYS_DIR",
        help="The gateway's key folder (one file per key id); default: the local stack's, after `kaizen up`.",
    ),
]


def _keyring(keys_dir: Path | None, key_id: str | None) -> Keyring:
    """The keys named by --keys-dir or the environment, else the local stack's (said on stderr)."""
    from controllers.gateway import auth

    env = dict(os.environ)
    if keys_dir is not None:
        env["KAIZEN_TOKEN_KEYS_DIR"] = str(keys_dir)
    elif not env.get("KAIZEN_TOKEN_SECRET"):
        local = localstack.keys_dir()
        if local is None:
            raise _fail(
                "no token key: pass --keys-dir (the gateway's key folder) or set KAIZEN_TOKEN_SECRET;"
                f" after `kaizen up` the local stack's key is found in {localstack.state_dir()}/{localstack.KEYS_DIR}"
                " (run from the folder `kaizen up` ran in, or set KAIZEN_STATE_DIR)"
            )
        typer.secho(f"using the local stack's key in {local}", err=True, fg=typer.colors.YELLOW)
        env["KAIZEN_TOKEN_KEYS_DIR"] = str(local)
    if key_id:
        env["KAIZEN_TOKEN_SIGNING_KEY"] = key_id
    try:
        return auth.Keyring.from_env(env)
    except (ValueError, OSError) as error:
        raise _fail(f"token keys: {error}") from error


@token_app.command("create")
def token_create(
    subject: Annotated[
        str | None,
        typer.Option(
            help="Who the token is for, e.g. agent-coder or alice (a feedback token: widget-<agent>)."
        ),
    ] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 3600s, 12h, 30d.")] = "30d",
    role: Annotated[
        str, typer.Option(help="agent, reviewer, operator, admin, or feedback (the embeddable widget's).")
    ] = "agent",
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="A namespace it may act in (repeat; '*' for all)."),
    ] = None,
    agent: Annotated[
        list[str] | None,
        typer.Option(
            help="An agent an agent token may write for, or a feedback token may rate (and the route whose"
            " requests it may rate); repeat. Default for an agent token: the subject."
        ),
    ] = None,
    key_id: Annotated[str | None, typer.Option(help="Sign with this key of KAIZEN_TOKEN_KEYS_DIR.")] = None,
    keys_dir: KeysDir = None,
) -> None:
    """Print a bearer token signed with the gateway's key (KAIZEN_TOKEN_SECRET or KAIZEN_TOKEN_KEYS_DIR).

    With no --role the token is an agent token for the one agent named by --subject, in namespace
    "default" unless --namespace says otherwise. A feedback token (``--role feedback``) may only post
    feedback on the --agent it names; it is meant to sit in a web page, so give it a short --ttl.
    """
    from controllers.api.identity import Role
    from controllers.gateway import auth

    keyring = _keyring(keys_dir, key_id)
    try:
        chosen = Role(role)
    except ValueError as error:
        raise _fail(f"--role {role!r}: roles are {', '.join(r.value for r in Role)}") from error
    if subject is None and chosen is not Role.FEEDBACK:
        raise _fail("--subject is required: who the token is for, e.g. agent-coder or alice")
    if chosen is Role.FEEDBACK and not agent:
        raise _fail("a feedback token names the agents whose answers it may rate: pass --agent")
    subject = subject or f"widget-{(agent or ['?'])[0]}"
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if not ttl[:-1].isdigit() or ttl[-1] not in units:
        raise _fail("--ttl must look like 3600s, 90m, 12h or 30d")
    seconds = int(ttl[:-1]) * units[ttl[-1]]
    try:
        token = auth.issue(
            keyring, subject, seconds, role=chosen, namespaces=namespace or ["default"], agents=agent or None
        )
    except ValueError as error:
        raise _fail(str(error)) from error
    typer.echo(token)


@token_app.command("inspect")
def token_inspect(
    token: Annotated[str, typer.Argument(help="The token (kz2....).")], keys_dir: KeysDir = None
) -> None:
    """Verify a token with the gateway's keys and print what it carries, including its id."""
    from controllers.gateway import auth

    keyring = _keyring(keys_dir, None)
    try:
        principal = auth.verify(keyring, token.strip())
    except (ValueError, auth.InvalidToken) as error:
        raise _fail(str(error)) from error
    expires = datetime.datetime.fromtimestamp(principal.expires_at or 0, datetime.UTC).isoformat()
    document = {
        "id": principal.token_id,
        "subject": principal.subject,
        "role": str(principal.role),
        "namespaces": list(principal.namespaces),
        "agents": list(principal.agents),
        "expires": expires,
    }
    typer.echo(json.dumps(document, indent=2))
