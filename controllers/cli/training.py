"""``kaizen retry trainingrun``, ``kaizen train learningpolicy`` and ``kaizen logs trainingrun``.

Retry and train are interventions (controllers.api.intervention): the request is written on the object
and the operator answers it, recording who asked, when, why and what it did in status.interventions and
an Event. A retry grants a run whose job failed for good one more attempt (the next deterministic
submission id, so never a second job for one request); train sets the policy's ``kaizen.dev/train-now``
trigger to the request's id, and the operator answers with the run it started, or why none (paused,
over the GPU budget, a run still in progress; the cooldown holds only automatic triggers). The command
waits ``--timeout`` seconds for that answer; ``--wait`` then follows the run until it ends, and the exit
status says how it ended.

``logs`` prints the trainer's log of one attempt from wherever it ran (controllers.cli.trainlogs).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from controllers.cli.kubeapi import default_namespace
from controllers.cli.requests import WAIT_SECONDS

if TYPE_CHECKING:
    from controllers.api.intervention import Action
    from controllers.api.kindinfo import KindInfo

Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="The object's namespace (default: the kubeconfig context's)."),
]
Reason = Annotated[str, typer.Option("--reason", help="Why, in your words: recorded with the request.")]
Wait = Annotated[
    bool, typer.Option("--wait", help="Then follow the run until it ends; exit 1 unless it succeeded.")
]
Timeout = Annotated[
    float,
    typer.Option("--timeout", min=0, help="Seconds to wait for the operator's answer to the request."),
]
FOLLOW_POLL = 2.0


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _ask(
    info: KindInfo, namespace: str, name: str, action: Action, reason: str, train: bool, timeout: float
) -> str:
    """Write the request, wait for the operator's answer, and return it (exit 1 when declined or unanswered)."""
    from controllers.api import kinds
    from controllers.cli.requests import RequestError, ask, current_user, new_request
    from controllers.decisions.answers import is_declined

    request = new_request(action, reason, current_user())
    extra = {kinds.TRAIN_NOW: request.id} if train else None
    try:
        answer = ask(info.resource, namespace, name, request, annotations=extra, wait=timeout)
    except RequestError as refused:
        raise _fail(str(refused)) from refused
    target = f"{info.kind.lower()}/{name}"
    if not answer.outcome:
        raise _fail(
            f"{target}: the operator has not answered {request.action.value} {request.id} within"
            f" {timeout:g}s; it stays"
            f" pending and is acted on when the operator runs (is it? `kubectl get pods -A -l"
            f" app.kubernetes.io/name=kaizen`). Follow it with: kubectl get {info.plural} {name} -n {namespace}"
        )
    if is_declined(answer.outcome):
        raise _fail(f"{target}: {answer.outcome}")
    typer.echo(f"{target}: {answer.outcome}")
    return answer.outcome


def follow_run(namespace: str, name: str) -> bool:
    """Print the run's Ready condition each time it changes until the run ends; whether it succeeded."""
    from controllers.api import kinds
    from controllers.api.kindinfo import condition
    from controllers.cli.requests import RequestError, read

    said = ""
    while True:
        try:
            body = read(kinds.RUNS, namespace, name)
        except RequestError as gone:
            raise _fail(str(gone)) from gone
        ready = condition(body, "Ready")
        line = f"trainingrun/{name}: {ready.get('reason', 'Pending')}: {ready.get('message', '')}".rstrip(
            ": "
        )
        if line != said:
            typer.echo(line)
            said = line
        if (body.get("status") or {}).get("completionTime"):
            return bool(
                condition(body, "Succeeded").get("status") == "True" and ready.get("status") == "True"
            )
        time.sleep(FOLLOW_POLL)


def retry_trainingrun(
    name: Annotated[str, typer.Argument(help="The failed TrainingRun.")],
    namespace: Namespace = None,
    reason: Reason = "",
    wait: Wait = False,
    timeout: Timeout = WAIT_SECONDS,
) -> None:
    """Give a TrainingRun that failed for good one more attempt (same frozen spec and snapshot).

    Declined, with why, for a run still going, one that trained, one whose snapshot was empty, or one
    whose policy has started a newer run since: then fix the cause and `kaizen train` a new run."""
    from controllers.api import trainingrun
    from controllers.api.intervention import Action

    namespace = namespace or default_namespace()
    _ask(trainingrun.INFO, namespace, name, Action.RETRY, reason, train=False, timeout=timeout)
    if wait and not follow_run(namespace, name):
        raise typer.Exit(1)


def train_learningpolicy(
    name: Annotated[str, typer.Argument(help="The LearningPolicy.")],
    namespace: Namespace = None,
    reason: Reason = "",
    wait: Wait = False,
    timeout: Timeout = WAIT_SECONDS,
) -> None:
    """Start one TrainingRun of the policy now, on the data it has (prints the run it started).

    Declined, with why, while the policy is paused, over its GPU budget or has a run in progress."""
    from controllers.api import learningpolicy
    from controllers.api.intervention import Action

    namespace = namespace or default_namespace()
    outcome = _ask(learningpolicy.INFO, namespace, name, Action.TRAIN, reason, train=True, timeout=timeout)
    run = outcome.removeprefix("started TrainingRun ").strip()
    if wait and run and not follow_run(namespace, run):
        raise typer.Exit(1)


def logs_trainingrun(
    name: Annotated[str, typer.Argument(help="The TrainingRun.")],
    namespace: Namespace = None,
    attempt: Annotated[
        int | None, typer.Option("--attempt", min=1, help="Which attempt (default: the latest).")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            envvar="RAY_ADDRESS",
            help="The Ray dashboard to read from (e.g. a port-forward), instead of the one the job names.",
        ),
    ] = None,
) -> None:
    """Print the trainer's log of one attempt: the KubeRay submitter pod's log, else Ray's job log.

    A Ray cluster with token authentication needs its token in RAY_AUTH_TOKEN (or a file named by
    RAY_AUTH_TOKEN_PATH), as Ray's own CLI does."""
    from controllers.cli import trainlogs
    from controllers.cli.requests import RequestError

    try:
        trainlogs.print_logs(namespace or default_namespace(), name, attempt, follow, ray_address)
    except RequestError as failed:
        raise _fail(str(failed)) from failed


def register(app: typer.Typer) -> None:
    """``kaizen retry|train|logs <kind> NAME``, each kind also by its plural and short names, as kubectl."""
    from controllers.api import learningpolicy, trainingrun

    for verb, helptext, info, command in (
        ("retry", "Retry a failed TrainingRun: one more attempt.", trainingrun.INFO, retry_trainingrun),
        (
            "train",
            "Start one TrainingRun of a LearningPolicy now.",
            learningpolicy.INFO,
            train_learningpolicy,
        ),
        ("logs", "Print a TrainingRun's trainer log.", trainingrun.INFO, logs_trainingrun),
    ):
        group = typer.Typer(help=helptext, no_args_is_help=True)
        group.command(info.kind.lower())(command)
        for alias in (info.plural, *info.short_names):
            group.command(alias, hidden=True)(command)
        app.add_typer(group, name=verb)
