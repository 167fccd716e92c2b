"""``kaizen promote|abort|approve|pause|resume``: a person on call acting on an Experiment (or pausing a
LearningPolicy), the way ``kubectl argo rollouts promote|abort`` acts on a Rollout.

Each command writes one request (``controllers.api.intervention``) through ``controllers.cli.requests
.ask`` and prints the answer the operator recorded in the object's status; ``pause``/``resume`` set
``spec.paused`` in the same write (the switch itself: a paused object stays paused whoever restarts
what). A request that cannot apply to the object as it is (already decided, nothing awaiting
approval, already paused) is refused here, before anything is written. Kinds are named as kubectl
names them: ``experiment``, ``experiments``, ``exp``; ``learningpolicy``, ``lp``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from controllers.api import experiment, learningpolicy
from controllers.api.intervention import Action
from controllers.api.kindinfo import KindInfo
from controllers.cli.kubeapi import default_namespace
from controllers.cli.requests import WAIT_SECONDS, RequestError, ask, current_user, new_request

DONE = {
    Action.PROMOTE: "promoted",
    Action.ABORT: "aborted",
    Action.APPROVE: "approved",
    Action.PAUSE: "paused",
    Action.RESUME: "resumed",
}


KIND_HELP = "The kind, as kubectl names it: experiment (exp), or for pause/resume learningpolicy (lp)."


@dataclass(frozen=True)
class Command:
    action: Action
    kinds: tuple[KindInfo, ...]
    help: str


COMMANDS = (
    Command(Action.PROMOTE, (experiment.INFO,), "Promote an Experiment's challenger now, whatever the evidence."),
    Command(Action.ABORT, (experiment.INFO,), "Abort an Experiment: roll its challenger back, all traffic on the champion."),
    Command(Action.APPROVE, (experiment.INFO,), "Approve the promotion an Experiment (autoPromote false) waits for."),
    Command(Action.PAUSE, (experiment.INFO, learningpolicy.INFO), "Pause an Experiment (weights held) or a LearningPolicy (no new runs)."),
    Command(Action.RESUME, (experiment.INFO, learningpolicy.INFO), "Resume a paused Experiment or LearningPolicy."),
)  # fmt: skip


def resolve(kind: str, allowed: tuple[KindInfo, ...], verb: str) -> KindInfo:
    """The kind a person typed, by any name kubectl accepts (kind, plural, short name), or why not."""
    for info in allowed:
        if kind.lower() in (info.kind.lower(), info.plural, *info.short_names):
            return info
    names = "; ".join(
        f"{info.kind.lower()} ({', '.join((info.plural, *info.short_names))})" for info in allowed
    )
    raise RequestError(f"kaizen {verb} works on: {names}; got {kind!r}")


def refusal(action: Action, info: KindInfo, body: dict[str, Any]) -> str:
    """Why ``action`` cannot apply to the object as it is now ("" when it can)."""
    name, spec, status = body["metadata"]["name"], body.get("spec") or {}, body.get("status") or {}
    ref = f"{info.kind.lower()} {name}"
    verb = action.value.lower()
    if info is experiment.INFO and status.get("decision") in experiment.FINAL_DECISIONS:
        said = f"{status['decision']} ({status.get('decisionReason') or 'no reason recorded'})"
        return f"{ref} is already decided: {said}; nothing to {verb}"
    if action == Action.APPROVE:
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
        )
        if ready.get("reason") != "AwaitingApproval":
            now = f"{ready.get('reason')}: {ready.get('message')}" if ready else "no status yet"
            return f"nothing awaits approval on {ref} ({now})"
    if action == Action.PAUSE and spec.get("paused"):
        return f"{ref} is already paused (resume it with: kaizen resume {info.kind.lower()} {name})"
    if action == Action.RESUME and not spec.get("paused"):
        return f"{ref} is not paused"
    return ""


def intervene(
    command: Command, kind: str, name: str, namespace: str | None, reason: str, wait: float
) -> None:
    verb = command.action.value.lower()
    namespace = namespace or default_namespace()
    try:
        info = resolve(kind, command.kinds, verb)
        spec = (
            {"paused": command.action == Action.PAUSE}
            if command.action in (Action.PAUSE, Action.RESUME)
            else None
        )
        request = new_request(command.action, reason, current_user())
        answer = ask(
            info.resource, namespace, name, request, spec=spec,
            check=lambda body: refusal(command.action, info, body), wait=wait,
        )  # fmt: skip
    except RequestError as refused:
        typer.secho(f"error: {refused}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from refused
    ref = f"{info.kind.lower()}.{info.resource.group}/{name}"
    if not answer.outcome:
        typer.echo(
            f"{ref}: {verb} request {request.id} written; the operator has not answered within {wait:g}s."
            f" Check with: kaizen describe {info.kind.lower()} {name} -n {namespace}"
        )
        return
    if answer.outcome.startswith("declined"):
        typer.secho(f"{ref} {verb} {answer.outcome}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    done = DONE[command.action]  # said once: "x promoted: all traffic on ...", not "promoted: promoted: ..."
    typer.echo(
        f"{ref} {answer.outcome}" if answer.outcome.startswith(done) else f"{ref} {done}: {answer.outcome}"
    )


def _command(command: Command) -> Callable[..., None]:
    def run(
        kind: Annotated[str, typer.Argument(help=KIND_HELP)],
        name: Annotated[str, typer.Argument(help="The object's name.")],
        namespace: Annotated[
            str | None, typer.Option("--namespace", "-n", help="Its namespace (default: the context's).")
        ] = None,
        reason: Annotated[str, typer.Option("--reason", help="Why, for the record (status and Event).")] = "",
        wait: Annotated[
            float, typer.Option("--wait", min=0, help="Seconds to wait for the operator's answer.")
        ] = WAIT_SECONDS,
    ) -> None:
        intervene(command, kind, name, namespace, reason, wait)

    run.__doc__ = command.help
    return run


def register(app: typer.Typer) -> None:
    """Add the commands to ``kaizen``."""
    for command in COMMANDS:
        app.command(command.action.value.lower(), help=command.help)(_command(command))
