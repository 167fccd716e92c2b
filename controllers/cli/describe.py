"""``kaizen describe KIND [NAME]``: one object's page, as a person on call reads it.

Reads the object and the core/v1 Events about it (``controllers.cli.kubeapi``); the page itself is
``controllers.cli.describing`` and ``describing_kinds`` (pure, and golden-tested). Without a name,
every object of the kind in the namespace (with ``-A``, in every namespace) is described, like
``kubectl describe``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from controllers.cli import printing
from controllers.cli.describing import page
from controllers.cli.describing_kinds import SECTIONS
from controllers.cli.get import KIND_HELP, UsageError, fail, split_kind
from controllers.cli.kubeapi import Cluster, ReadError, default_namespace
from controllers.cli.printing import UnknownKind


def describe(
    kind: Annotated[str, typer.Argument(help=KIND_HELP, show_default=False)],
    name: Annotated[
        str | None, typer.Argument(help="The object's name (none: every one).", show_default=False)
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="Namespace (default: the kubeconfig context's, else default)."
        ),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Describe across every namespace.")
    ] = False,
) -> None:
    """Describe Kaizen objects: settings, status, conditions, interventions, Events and what to run next."""
    try:
        word, name = split_kind(kind, name)
        infos = printing.resolve(word)
        if name and len(infos) > 1:
            raise UsageError(f"a name needs one kind, not {word}")
        if name and all_namespaces:
            raise UsageError("a name cannot be looked up across all namespaces; give -n NAMESPACE")
        cluster = Cluster.connect()
        where = None if all_namespaces else (namespace or default_namespace())
        pages = []
        for info in infos:
            objects = [cluster.get(info, where, name)] if name and where else cluster.objects(info, where)[0]
            now = datetime.now(UTC)
            for obj in objects:
                body = SECTIONS[info.kind](obj, now)
                pages.append(page(info, obj, body, cluster.events(info, obj), now))
        if not pages:
            typer.echo(printing.nothing_found(where), err=True)
        typer.echo("\n\n".join(pages), nl=False)
    except (UnknownKind, UsageError, ReadError) as error:
        raise fail(str(error)) from error
