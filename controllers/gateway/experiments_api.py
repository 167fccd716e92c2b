"""``GET /v1/experiments/{namespace}/{name}/series``: what ``kaizen experiment report`` needs from the store.

The report draws an Experiment's story (traffic split, rewards, the confidence sequence over time)
from the rows the router and the agents wrote. People on call should not need the store's
credentials for that, so the gateway reads the rows (``store.experiment_series``) and answers with
the ``Series`` the report computes with, plus the route that carries the Experiment's traffic (its
champion and weights; null once the operator has removed it). The Experiment itself (alpha,
variants, status) comes from the Kubernetes API, as ``kubectl`` reads it.

Reading takes ``experiments/get`` on the Experiment's name in its namespace: reviewers and operators
of the namespace, and ServiceAccounts whose RBAC grants that verb. The answer holds aggregates and
the reward stream (variant, the weights it was assigned by, reward, when), never prompts or outputs.
``until`` ends the series at an instant (a decided Experiment's decidedAt); ``series`` is null when
no request was counted by then. ``encode``/``decode`` are the two halves of the wire shape; the
command line decodes with the same module.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

import re
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool

from controllers.api.routes import RouteConfig, experiment_key
from controllers.decisions.access import Action
from controllers.decisions.experiments.observations import RewardStream, VariantObservations
from controllers.decisions.experiments.report import Series
from controllers.gateway.context import Caller, Shared, authorize
from controllers.gateway.errors import ApiError
from controllers.store.db import transaction
from controllers.store.experiment_series import experiment_series, find_route

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _checked(field: str, value: str, pattern: re.Pattern[str], longest: int, what: str) -> str:
    """The path segment, or a 422 naming it and saying what it must look like."""
    if len(value) > longest or not pattern.fullmatch(value):
        message = (
            f"{field} must be {what} (at most {longest} of a-z, 0-9, '-'{', .' if field == 'name' else ''})"
        )
        raise ApiError(422, message, [{"field": field, "message": message}])
    return value


def _namespace(namespace: Annotated[str, Path()]) -> str:
    return _checked("namespace", namespace, NAMESPACE, 63, "a Kubernetes namespace name")


def _name(name: Annotated[str, Path()]) -> str:
    return _checked("name", name, OBJECT_NAME, 253, "the Experiment's name, a Kubernetes object name")


Namespace = Annotated[str, Depends(_namespace)]
Name = Annotated[str, Depends(_name)]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class RouteOut(_Camel):
    name: str = Field(description="The route (the LearningPolicy's name)")
    champion: str
    weights: dict[str, int] = Field(description="Each variant's current share of traffic, in percent")


class StreamOut(_Camel):
    """The rewards in the order they were recorded, column by column; ``shares`` lists each distinct
    set of assignment probabilities once and ``share`` points into it."""

    names: list[str]
    arm: list[int] = Field(description="The variant each rewarded request was assigned (index into names)")
    shares: list[list[float]]
    share: list[int]
    reward: list[float]
    recorded: list[float] = Field(description="When each reward was recorded, POSIX seconds")


class SeriesOut(_Camel):
    start: datetime
    edges: list[datetime]
    traffic: list[dict[str, float]] = Field(description="Per interval ending at each edge: share, %")
    observations: dict[str, dict[str, Any]]
    stream: StreamOut


class ExperimentSeriesOut(_Camel):
    namespace: str
    name: str
    route: RouteOut | None
    series: SeriesOut | None


def encode(route: RouteConfig | None, series: Series | None, namespace: str, name: str) -> dict[str, Any]:
    """The answer's JSON (camelCase), as ``ExperimentSeriesOut`` documents it."""
    routed = None
    if route is not None:
        weights = {variant.name: variant.weight for variant in route.variants}
        routed = RouteOut(name=route.name, champion=route.champion.name, weights=weights)
    shown = None
    if series is not None:
        stream = series.stream
        rows = [tuple(float(x) for x in row) for row in stream.shares]
        distinct = sorted(set(rows))
        index = {row: position for position, row in enumerate(distinct)}
        shown = SeriesOut(
            start=series.start,
            edges=list(series.edges),
            traffic=[dict(interval) for interval in series.traffic],
            observations={name: asdict(found) for name, found in series.observations.items()},
            stream=StreamOut(
                names=list(stream.names),
                arm=[int(arm) for arm in stream.arm],
                shares=[list(row) for row in distinct],
                share=[index[row] for row in rows],
                reward=[float(reward) for reward in stream.reward],
                recorded=[float(when) for when in series.recorded],
            ),
        )
    answer = ExperimentSeriesOut(namespace=namespace, name=name, route=routed, series=shown)
    return answer.model_dump(mode="json", by_alias=True)


def decode(body: dict[str, Any]) -> tuple[RouteOut | None, Series | None]:
    """The route and the ``Series`` an answer carries (ValueError when it is not one)."""
    answer = ExperimentSeriesOut.model_validate(body)
    found = answer.series
    if found is None:
        return answer.route, None
    columns = found.stream
    width = len(columns.names)
    shares = np.asarray([columns.shares[i] for i in columns.share], dtype=np.float64).reshape(-1, width)
    stream = RewardStream(
        names=tuple(columns.names),
        arm=np.asarray(columns.arm, dtype=np.int64),
        shares=shares,
        reward=np.asarray(columns.reward, dtype=np.float64),
    )
    series = Series(
        start=found.start,
        edges=tuple(found.edges),
        stream=stream,
        recorded=np.asarray(columns.recorded, dtype=np.float64),
        traffic=tuple(found.traffic),
        observations={name: VariantObservations(**row) for name, row in found.observations.items()},
    )
    return answer.route, series


@router.get("/{namespace}/{name}/series", response_model=ExperimentSeriesOut)
async def experiment_series_of(
    caller: Caller,
    shared: Shared,
    namespace: Namespace,
    name: Name,
    buckets: Annotated[int, Query(ge=2, le=500, description="Points in time")] = 48,
    until: Annotated[datetime | None, Query(description="End the series here (decidedAt)")] = None,
) -> JSONResponse:
    await authorize(shared, caller, Action.READ_EXPERIMENTS, namespace, name)
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)  # the store keeps UTC; a bare time means UTC, as in Events

    def read() -> dict[str, Any]:
        with transaction(shared.factory) as session:
            route = find_route(session, namespace, name)
            key = experiment_key(namespace, name)
            series = experiment_series(session, key, buckets=buckets, until=until)
        return encode(route, series, namespace, name)

    return JSONResponse(await run_in_threadpool(read))
