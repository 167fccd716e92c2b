"""``kaizen experiment report``: an Experiment's statistics as a table, and its story as a PNG.

Two sources. The Experiment itself comes from the Kubernetes API (the current kubeconfig, or the
pod's service account), read once with a short timeout: its champion, ``spec.rollout.alpha`` and
``minDetectableEffect``, and its status (decision, decidedAt, the per-variant rows). The traffic
comes from the gateway's API with a token (``--gateway``/``KAIZEN_GATEWAY_URL`` and
``--token``/``KAIZEN_TOKEN``; the local stack's by default after ``kaizen up``), or offline from a
store given explicitly with ``--database-url`` (``controllers.cli.report_source``).

A decided Experiment's table is its status, exactly: the figures the Event and ``kubectl get`` show.
Its plot ends at decidedAt. Before a decision, or when the cluster cannot be reached (a note says
so), the table is computed from the recorded traffic up to now, and ``--alpha``, ``--min-detectable-effect``
and ``--champion`` stand in for the spec (given with a reachable cluster, they override it for the
computed figures and the plot). The arithmetic is the planner's (``controllers.decisions.experiments
.report``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controllers.cli.cluster import read_experiment
from controllers.cli.report_source import Routed, SourceError

if TYPE_CHECKING:
    from controllers.api.experiment import Experiment, ExperimentStatus, VariantStatus
    from controllers.decisions.experiments.report import Series
    from controllers.decisions.experiments.report_plot import Decided

DEFAULT_ALPHA = 0.05
DEFAULT_MDE = 0.05

experiment_app = typer.Typer(
    help="Look at experiments: where each variant stands and how it got there.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _note(message: str) -> None:
    typer.secho(f"note: {message}", fg=typer.colors.YELLOW, err=True)


@dataclass(frozen=True)
class Settings:
    """What the report computes with, and where each came from (for the notes)."""

    champion: str | None
    alpha: float
    min_detectable_effect: float
    status: ExperimentStatus | None
    decided_alpha: float = DEFAULT_ALPHA  # the spec's alpha, that a decided status was computed at

    @property
    def decided(self) -> bool:
        from controllers.api.experiment import FINAL_DECISIONS

        return self.status is not None and self.status.decision.value in FINAL_DECISIONS

    @property
    def frozen_rows(self) -> list[VariantStatus]:
        """A decided Experiment's status rows: the table, as they are; [] before a decision."""
        return list(self.status.variants) if self.status is not None and self.decided else []


GatewayUrl = Annotated[
    str | None,
    typer.Option(
        "--gateway",
        envvar="KAIZEN_GATEWAY_URL",
        help="The gateway's base URL (default: the local stack's, after `kaizen up`).",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="KAIZEN_TOKEN",
        help="A reviewer or operator token of the namespace (default against the local stack: one"
        " signed with its key).",
    ),
]
OfflineDatabase = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="Offline: read this store directly instead of the gateway (it must exist)."
    ),
]


@experiment_app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="The Experiment's name.")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="The Experiment's namespace.")
    ] = "default",
    gateway: GatewayUrl = None,
    token: Token = None,
    database_url: OfflineDatabase = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write the PNG (default: <name>-report.png).")
    ] = None,
    buckets: Annotated[int, typer.Option(min=2, max=500, help="Points in time to plot.")] = 48,
    champion: Annotated[
        str | None, typer.Option(help="The champion variant (default: the Experiment's, else the route's).")
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(min=0.001, max=0.2, help="spec.rollout.alpha (default: the Experiment's, else 0.05)."),
    ] = None,
    min_detectable_effect: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            max=1.0,
            help="spec.rollout.minDetectableEffect (default: the Experiment's, else 0.05).",
        ),
    ] = None,
) -> None:
    """Print per-variant statistics and write reward, confidence sequence and weights over time as PNG."""
    from controllers.decisions.experiments.report import format_table, from_status, story, summarize
    from controllers.decisions.experiments.report_plot import render

    found, why = read_experiment(namespace, name)
    settings = _settings(found, why, champion, alpha, min_detectable_effect)
    status, frozen = settings.status, settings.frozen_rows
    until = status.decided_at if status is not None and settings.decided else None
    route, series = _read(gateway, token, database_url, namespace, name, buckets, until)
    chosen = _champion(settings.champion, route, series, status, f"{namespace}/{name}")
    told = None
    if series is not None:
        told = story(
            series, chosen, alpha=settings.alpha, min_detectable_effect=settings.min_detectable_effect
        )
    if frozen:
        typer.echo(format_table(from_status(frozen, chosen), settings.decided_alpha))
    elif series is not None and told is not None:
        typer.echo(format_table(summarize(series, chosen, told, _weights(status, route)), settings.alpha))
    _say_decision(status)
    if series is None or told is None:
        raise _fail(f"no traffic recorded for experiment {namespace}/{name} before its decision, so no plot")
    path = out or Path(f"{name}-report.png")
    decided = _decided(status, chosen) if until is not None else None
    render(series, told, chosen, path, alpha=settings.alpha, title=f"{namespace}/{name}", decided=decided)
    typer.echo(f"\nplot written to {path}")


def _settings(
    found: Experiment | None,
    why: str,
    champion: str | None,
    alpha: float | None,
    min_detectable_effect: float | None,
) -> Settings:
    """The flags over the Experiment's spec; the defaults when neither is there (with a note)."""
    from controllers.api.experiment import VariantRole

    if found is None:
        used = [
            f"--alpha {alpha if alpha is not None else f'{DEFAULT_ALPHA} (default)'}",
            "--min-detectable-effect"
            f" {min_detectable_effect if min_detectable_effect is not None else f'{DEFAULT_MDE} (default)'}",
            f"--champion {champion}" if champion else "the route's champion",
        ]
        _note(f"the Experiment could not be read from a cluster: {why}")
        _note(
            f"so the table is computed from the recorded traffic, with {', '.join(used)}; pass the Experiment's"
            " spec.rollout values if they differ, or set KUBECONFIG to read its spec and status"
        )
        return Settings(
            champion,
            alpha if alpha is not None else DEFAULT_ALPHA,
            min_detectable_effect if min_detectable_effect is not None else DEFAULT_MDE,
            None,
        )
    rollout = found.spec.rollout
    status = found.status
    settings = Settings(
        champion or next((v.name for v in found.spec.variants if v.role == VariantRole.CHAMPION), None),
        alpha if alpha is not None else rollout.alpha,
        min_detectable_effect if min_detectable_effect is not None else rollout.min_detectable_effect,
        status,
        rollout.alpha,
    )
    overridden = (champion, alpha, min_detectable_effect) != (None, None, None)
    if overridden and settings.frozen_rows:
        _note(
            "the table is the Experiment's status as decided; --alpha, --min-detectable-effect"
            " and --champion change only the plot"
        )
    return settings


def _read(
    gateway: str | None,
    token: str | None,
    database_url: str | None,
    namespace: str,
    name: str,
    buckets: int,
    until: datetime | None,
) -> tuple[Routed | None, Series | None]:
    """The route that carries the Experiment (None once cleaned up) and its series, from the gateway
    (or the store named by --database-url)."""
    from controllers.cli import report_source

    try:
        if database_url:
            route, series = report_source.from_store(database_url, namespace, name, buckets, until)
            where = "the store at --database-url"
        else:
            source = report_source.gateway_for(gateway, token, namespace)
            if source.where != report_source.GIVEN:
                _note(f"reading through {source.describe()} with {source.where}")
            route, series = report_source.from_gateway(source, namespace, name, buckets, until)
            where = source.describe()
    except SourceError as error:
        raise _fail(str(error)) from error
    if series is None and until is None:
        raise _fail(
            f"no traffic recorded for experiment {namespace}/{name} in {where}: check the name and -n"
            " (the Experiment's namespace)"
        )
    return route, series


def _champion(
    given: str | None,
    route: Routed | None,
    series: Series | None,
    status: ExperimentStatus | None,
    experiment: str,
) -> str:
    """``--champion``, else the Experiment's, else the route's; it must be a variant of the data."""
    champion = given or (route.champion if route else None)
    if champion is None:
        raise _fail(
            f"nothing names the champion of {experiment}: the Experiment could not be read (see the note"
            " above; set KUBECONFIG) and no route carries it any more; pass --champion"
        )
    known = set(series.observations) | set(series.stream.names) if series is not None else set()
    known |= {row.name for row in status.variants} if status is not None else set()
    if champion not in known:
        raise _fail(
            f"no variant {champion!r} in {experiment}; pass --champion with one of: {', '.join(sorted(known))}"
        )
    return champion


def _weights(status: ExperimentStatus | None, route: Routed | None) -> dict[str, int] | None:
    """The weights the planner set (status), else the route's; None: the last interval's split."""
    if status is not None and status.variants:
        return {row.name: row.weight for row in status.variants}
    return dict(route.weights) if route else None


def _decided(status: ExperimentStatus | None, champion: str) -> Decided | None:
    """The plot's mark of a decided Experiment: decision, decidedAt, each challenger's CS as decided."""
    from controllers.decisions.experiments.report_plot import Decided

    if status is None or status.decided_at is None:
        return None
    bands = {
        row.name: (row.confidence_lower, row.confidence_upper)
        for row in status.variants
        if row.name != champion and row.confidence_lower is not None and row.confidence_upper is not None
    }
    return Decided(status.decision.value, status.decided_at, bands)


def _say_decision(status: ExperimentStatus | None) -> None:
    """The decision and its reason under the table, when the Experiment was read."""
    if status is None:
        return
    when = f" at {status.decided_at.isoformat()}" if status.decided_at else ""
    reason = f": {status.decision_reason}" if status.decision_reason else ""
    typer.echo(f"\ndecision: {status.decision.value}{when}{reason}")
