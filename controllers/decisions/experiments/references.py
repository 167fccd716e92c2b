"""Variants whose ShadowModel will not serve unless a person acts, and when the experiment gives up.

A variant names a ShadowModel. One that exists but does not serve yet (deploying) is waited for, as
long as it takes. One that will not serve by itself is *unresolved*: no ShadowModel of that name
(``ShadowModelNotFound``), or one already Retired or RolledBack (``ShadowModelOutOfService``). A
missing model can still be created, so the experiment says so (Ready False, naming the field) and
waits until ``spec.rollout.maxDuration`` has passed since its traffic started, or since it was created
when none has flowed yet. A Retired or RolledBack model never serves again, so when a variant names
one there is nothing to wait for (the 200-lifecycle chaos run found an experiment
opened for a champion that its drift watch rolled back a second later, stuck for 30 minutes). Either
way it gives up: Inconclusive, traffic all on the champion when the champion serves, nothing routed
when not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from controllers.api.common import parse_duration
from controllers.api.experiment import ExperimentSpec, ExperimentStatus, VariantRole, VariantStatus
from controllers.decisions.conditions import READY, Want

NOT_FOUND = "ShadowModelNotFound"
OUT_OF_SERVICE = "ShadowModelOutOfService"
REASONS = frozenset({NOT_FOUND, OUT_OF_SERVICE})


@dataclass(frozen=True)
class Unresolved:
    """A variant whose ShadowModel will not serve by itself, in a sentence that names the field."""

    variant: str
    reason: str
    message: str


def not_found(index: int, variant: str, name: str, namespace: str) -> Unresolved:
    field = f"spec.variants[{index}].shadowModel"
    return Unresolved(variant, NOT_FOUND, f"{field}: no ShadowModel {name!r} in namespace {namespace!r}")


def out_of_service(index: int, variant: str, name: str, role: str) -> Unresolved:
    field = f"spec.variants[{index}].shadowModel"
    return Unresolved(variant, OUT_OF_SERVICE, f"{field}: ShadowModel {name!r} is {role} and serves no more")


def for_good(unresolved: Sequence[Unresolved]) -> bool:
    """A variant names a model that will never serve again: only a new Experiment helps."""
    return any(u.reason == OUT_OF_SERVICE for u in unresolved)


def give_up_at(
    spec: ExperimentSpec,
    started_at: datetime | None,
    created: datetime,
    unresolved: Sequence[Unresolved] = (),
) -> datetime:
    """``maxDuration`` after the traffic started, or after creation when none has flowed yet; at once
    (that same start) when the unresolved models are out of service for good."""
    start = started_at or created
    return start if for_good(unresolved) else start + parse_duration(spec.rollout.max_duration)


def _said(unresolved: list[Unresolved]) -> str:
    return "; ".join(u.message for u in unresolved)


def blocked(unresolved: list[Unresolved], due: datetime) -> Want:
    """Ready while the experiment still waits for a person to fix its references."""
    return Want.false(
        READY,
        unresolved[0].reason,
        f"{_said(unresolved)}. Create it or name a serving model in a new Experiment;"
        f" without one this experiment ends Inconclusive at {due:%Y-%m-%dT%H:%M:%SZ}",
    )


@dataclass(frozen=True)
class GiveUp:
    """The experiment's end when its references were never fixed."""

    reason: str
    weights: dict[str, int]  # every serving variant's weight; {} when the champion does not serve
    rows: list[VariantStatus]
    ready: Want


def give_up(
    spec: ExperimentSpec, status: ExperimentStatus, unresolved: list[Unresolved], serving: set[str]
) -> GiveUp:
    """Inconclusive: the champion, when it serves, gets all the traffic; the rows keep their figures."""
    champion = next((v.name for v in spec.variants if v.role == VariantRole.CHAMPION), None)
    routed = champion is not None and champion in serving
    weights = {v.name: 100 if v.name == champion else 0 for v in spec.variants if v.name in serving}
    where = f"traffic on {champion}" if routed else "nothing routed (no serving champion)"
    when = (
        "it will not serve again"
        if for_good(unresolved)
        else f"still so after maxDuration {spec.rollout.max_duration}"
    )
    reason = f"{_said(unresolved)}; {when}: inconclusive, {where}"
    before = {row.name: row for row in status.variants}
    rows = [
        before.get(v.name, VariantStatus(name=v.name)).model_copy(
            update={"weight": weights.get(v.name, 0) if routed else 0}
        )
        for v in spec.variants
    ]
    ready = Want.false(READY, unresolved[0].reason, f"{reason}. Fix the reference in a new Experiment")
    return GiveUp(reason[:1024], weights if routed else {}, rows, ready)
