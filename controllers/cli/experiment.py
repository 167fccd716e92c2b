"""``kaizen experiment report``: an Experiment's statistics as a table, and its story as a PNG.

Reads only the experience store (``--database-url`` or ``KAIZEN_DATABASE_URL``, like ``kaizen db``),
so it works wherever the store is reachable, with or without a cluster: the champion and the current
weights come from the route the operator published for the Experiment, the statistics from the
assignments and rewards. The arithmetic is the planner's (``controllers.decisions.experiments.report``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controllers.cli.store import DatabaseUrl

if TYPE_CHECKING:
    from controllers.api.routes import RouteConfig
    from controllers.decisions.experiments.report import Snapshot

experiment_app = typer.Typer(
    help="Look at experiments: where each variant stands and how it got there.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@experiment_app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="The Experiment's name.")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="The Experiment's namespace.")
    ] = "default",
    database_url: DatabaseUrl = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write the PNG (default: <name>-report.png).")
    ] = None,
    buckets: Annotated[int, typer.Option(min=2, max=500, help="Points in time to plot.")] = 48,
    champion: Annotated[
        str | None, typer.Option(help="The champion variant, when no route names it (e.g. after cleanup).")
    ] = None,
    alpha: Annotated[
        float, typer.Option(min=0.001, max=0.2, help="The experiment's spec.rollout.alpha.")
    ] = 0.05,
    min_detectable_effect: Annotated[
        float, typer.Option(min=0.001, max=1.0, help="The experiment's spec.rollout.minDetectableEffect.")
    ] = 0.05,
) -> None:
    """Print per-variant statistics and write reward, confidence sequence and weights over time as PNG."""
    from controllers.decisions.experiments.report import format_table, render, summarize

    route, series = _read_store(database_url, namespace, name, buckets)
    champion = _champion(champion, route, series, f"{namespace}/{name}")
    weights = {variant.name: variant.weight for variant in route.variants} if route else None
    rows = summarize(
        series, champion, alpha=alpha, min_detectable_effect=min_detectable_effect, weights=weights
    )
    typer.echo(format_table(rows, alpha))
    path = out or Path(f"{name}-report.png")
    render(
        series,
        champion,
        path,
        alpha=alpha,
        min_detectable_effect=min_detectable_effect,
        title=f"{namespace}/{name}",
    )
    typer.echo(f"\nplot written to {path}")


def _read_store(
    database_url: str | None, namespace: str, name: str, buckets: int
) -> tuple[RouteConfig | None, list[Snapshot]]:
    """The route the operator published for the Experiment (None once cleaned up), and its series."""
    from sqlalchemy.exc import DBAPIError

    from controllers.api.routes import experiment_key
    from controllers.store.db import StoreUnavailable, make_engine, session_factory, transaction
    from controllers.store.experiment_series import find_route, observation_series

    engine = make_engine(database_url)
    try:
        with transaction(session_factory(engine)) as session:
            route = find_route(session, namespace, name)
            series = observation_series(session, experiment_key(namespace, name), buckets)
    except (StoreUnavailable, DBAPIError) as error:
        first_line = str(error).splitlines()[0]
        raise _fail(f"store query failed: {first_line} (`kaizen db upgrade` creates the schema)") from error
    finally:
        engine.dispose()
    if not series:
        raise _fail(
            f"no traffic recorded for experiment {namespace}/{name} (is the name or namespace right?)"
        )
    return route, series


def _champion(given: str | None, route: RouteConfig | None, series: list[Snapshot], experiment: str) -> str:
    """``--champion``, else the route's; it must have served traffic."""
    champion = given or (route.champion.name if route else None)
    if champion is None:
        raise _fail(f"no route names the champion of {experiment}; pass --champion")
    if champion not in series[-1][1]:
        raise _fail(
            f"--champion {champion!r} served no traffic; variants seen: {', '.join(sorted(series[-1][1]))}"
        )
    return champion
