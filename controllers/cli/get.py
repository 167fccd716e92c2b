"""``kaizen get KIND [NAME]``: Kaizen objects as ``kubectl get`` shows them, and ``--watch`` for changes.

The reading is ``controllers.cli.kubeapi``; what is printed is ``controllers.cli.printing`` (pure, and
golden-tested). Exit status 1 on any error, with a sentence on stderr that says what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from controllers.api.kindinfo import KindInfo
from controllers.cli import printing
from controllers.cli.kubeapi import Cluster, ReadError, default_namespace
from controllers.cli.printing import Output, TableShape, UnknownKind

KIND_HELP = (
    "learningpolicies (lp), trainingruns (tr), shadowmodels (sm), experiments (exp), several separated"
    " by commas, or all; KIND/NAME also works"
)


class UsageError(ValueError):
    """Flags that do not go together; the message says which."""


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def split_kind(kind: str, name: str | None) -> tuple[str, str | None]:
    """``exp/x`` as kind ``exp`` and name ``x`` (kubectl's form); a second name is refused."""
    if "/" not in kind:
        return kind, name
    word, _, given = kind.partition("/")
    if name or not given:
        raise UsageError(f"give the name once: {kind} {name or ''}".strip())
    return word, given


def output_format(output: str) -> Output:
    try:
        return Output(output)
    except ValueError:
        raise UsageError(f"--output must be one of wide, json, yaml or name (got {output!r})") from None


def get(
    kind: Annotated[str, typer.Argument(help=KIND_HELP, show_default=False)],
    name: Annotated[str | None, typer.Argument(help="One object's name.", show_default=False)] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="Namespace (default: the kubeconfig context's, else default)."
        ),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List across every namespace.")
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="wide, json, yaml or name.")] = "",
    selector: Annotated[
        str, typer.Option("--selector", "-l", help="Label selector, e.g. kaizen.dev/policy=coder.")
    ] = "",
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="After the table, print a row per change until Ctrl-C.")
    ] = False,
    watch_timeout: Annotated[
        int, typer.Option("--watch-timeout", min=0, help="Stop watching after this many seconds (0: never).")
    ] = 0,
) -> None:
    """Show Kaizen objects like `kubectl get`: the same columns, -o wide|json|yaml|name, -A and --watch."""
    try:
        word, name = split_kind(kind, name)
        infos = printing.resolve(word)
        shown = output_format(output)
        if name and len(infos) > 1:
            raise UsageError(f"a name needs one kind, not {word}")
        if name and all_namespaces:
            raise UsageError("a name cannot be looked up across all namespaces; give -n NAMESPACE")
        if watch and len(infos) > 1:
            raise UsageError(f"--watch follows one kind at a time, not {word}")
        cluster = Cluster.connect()
        where = None if all_namespaces else (namespace or default_namespace())
        found, since = _read(cluster, infos, where, name, selector)
        text = printing.render(found, shown, _now(), all_namespaces=all_namespaces, single=name is not None)
        if text:
            typer.echo(text, nl=False)
        elif shown in (Output.TABLE, Output.WIDE, Output.NAME):
            typer.echo(printing.nothing_found(where), err=True)
        if watch:
            _follow(cluster, found[0], where, since, selector, watch_timeout, shown, name)
    except (UnknownKind, UsageError, ReadError) as error:
        raise fail(str(error)) from error


def _now() -> datetime:
    return datetime.now(UTC)


def _read(
    cluster: Cluster, infos: list[KindInfo], namespace: str | None, name: str | None, selector: str
) -> tuple[list[tuple[KindInfo, list[dict[str, Any]]]], str]:
    """What to print, per kind, and the resourceVersion a watch of the (single) kind starts from."""
    if name is not None:
        assert namespace is not None  # refused above: no name across all namespaces
        obj = cluster.get(infos[0], namespace, name)
        return [(infos[0], [obj])], str(obj["metadata"].get("resourceVersion", ""))
    found, since = [], ""
    for info in infos:
        objects, since = cluster.objects(info, namespace, selector)
        found.append((info, objects))
    return found, since


def _follow(
    cluster: Cluster,
    found: tuple[KindInfo, Sequence[dict[str, Any]]],
    namespace: str | None,
    since: str,
    selector: str,
    seconds: int,
    shown: Output,
    name: str | None,
) -> None:
    """Print each change after ``since`` as kubectl does: a row in the table's columns (the header
    first if the table was empty), or the object in the chosen output."""
    info, initial = found
    shape = TableShape(info, wide=shown == Output.WIDE, all_namespaces=namespace is None)
    sizes = printing.table(shape, initial, _now())[1] if initial else []
    try:
        for _, obj in cluster.watch(info, namespace, since, selector, seconds):
            if name is not None and obj["metadata"]["name"] != name:
                continue
            if shown in (Output.TABLE, Output.WIDE):
                if sizes:
                    text, sizes = printing.watch_row(shape, obj, _now(), sizes)
                else:
                    text, sizes = printing.table(shape, [obj], _now())
            else:
                text = printing.render([(info, [obj])], shown, _now(), single=True)
            typer.echo(text, nl=False)
    except KeyboardInterrupt:
        return  # Ctrl-C ends a watch; nothing went wrong
