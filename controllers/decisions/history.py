"""Which of a policy's finished objects its history limits delete: a pure choice, no I/O.

A LearningPolicy's track leaves a TrainingRun per training, a ShadowModel per trained adapter and an
Experiment per challenger; ``spec.history`` says how many finished ones of each kind stay, like a
CronJob's ``successfulJobsHistoryLimit``. Of each class (succeeded runs, failed runs, settled
Experiments, retired ShadowModels) the newest ``limit`` stay, whatever they are, and older ones go,
oldest first, unless something still needs them:

- unfinished work is never a candidate: a run without ``completionTime``, an Experiment not at rest
  (no final decision, its effects not applied, or its drift watch still running), a Challenger or
  Champion ShadowModel, and a retired one not yet at rest (its deployment still up for a route);
- the champion and the champion before it (the two newest models in ``status.lineage``). The operator's
  own rollback goes back to the champion named by the promoting Experiment, which is unsettled while
  its drift watch runs and so protects that model anyway; the previous champion is kept after the watch
  too, so that a person can still go back one step by hand (its adapter and serving settings are in it);
- every ShadowModel that an unsettled Experiment names, of any policy: it may be serving or about to;
- the settled Experiment that promoted the current champion: the evidence of why it serves;
- the run that trained a protected ShadowModel, and any run that owns a ShadowModel that stays. A
  model is owned by its policy when the policy existed when it was made, else by its run; deleting
  such a run would make the garbage collector delete the model with it (background propagation), so
  the run waits until its model is gone. Orphaning instead would also orphan the run's RayJob;
- anything a person's request (``kaizen.dev/intervention``) still waits on.

Deleting in the order Experiments, ShadowModels, TrainingRuns keeps every reference pointing from
what goes to what stays or goes later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from controllers.api import experiment, intervention, shadowmodel
from controllers.api.experiment import VariantRole
from controllers.api.kinds import TRAIN_NOW, TRIGGER_TOKEN
from controllers.api.policy_settings import HistoryLimits
from controllers.api.shadowmodel import Role

LINEAGE_KEPT = 2  # the newest champions in status.lineage that stay: the champion and the one before it
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # an object's age when it has none (tests build such)
RETIRED_ROLES = frozenset({Role.RETIRED.value, Role.ROLLED_BACK.value})


class RunState(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class Seen:
    """What the choice needs of one object."""

    name: str
    uid: str = ""
    created: datetime = EPOCH
    waiting: bool = False  # a person's request waits on it, or it is being deleted already
    state: str = ""  # a run's RunState; "finished" for a retired model or a settled Experiment
    training_run: str = ""  # a model: the run that trained it; a run: the model it made
    owners: frozenset[str] = frozenset()  # a model: the uids of its owners
    models: frozenset[str] = frozenset()  # an Experiment: the ShadowModels it names
    challengers: frozenset[str] = frozenset()  # an Experiment: its challengers' ShadowModels
    promoted: bool = False  # an Experiment that decided Promote
    ours: bool = True  # an Experiment of this policy's track (others only protect the models they name)
    trigger_token: str = ""  # a run: the train-now value that started it

    @property
    def finished(self) -> bool:
        return self.state in ("finished", RunState.SUCCEEDED, RunState.FAILED)


@dataclass(frozen=True)
class Track:
    """A policy's objects as the API server shows them, and who serves its track."""

    runs: Sequence[Seen] = ()
    models: Sequence[Seen] = ()
    experiments: Sequence[Seen] = ()  # every Experiment of the namespace
    champion: str | None = None
    lineage: Sequence[str] = ()  # status.lineage's models, newest first
    train_now: str = ""  # the policy's kaizen.dev/train-now value (set with kubectl annotate)


@dataclass
class Collection:
    """What to delete (oldest first), and why each object beyond its limit stays."""

    experiments: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # "<Kind>/<name>" → why it stays

    def __bool__(self) -> bool:
        return bool(self.experiments or self.models or self.runs)


def choose(limits: HistoryLimits, track: Track) -> Collection:
    """What goes: the objects of each class beyond its limit that nothing protects."""
    out = Collection()
    protected_models = _protected_models(track)
    settled = [e for e in track.experiments if e.ours and e.finished]
    promoters = {
        e.name: "promoted the champion" for e in settled if e.promoted and track.champion in e.challengers
    }
    out.experiments = _beyond(settled, limits.settled_experiments_limit, promoters, "Experiment", out.kept)
    retired = [m for m in track.models if m.finished]
    out.models = _beyond(retired, limits.retired_models_limit, protected_models, "ShadowModel", out.kept)
    protected_runs = _protected_runs(track, protected_models, set(out.models))
    for state, limit in (
        (RunState.SUCCEEDED, limits.succeeded_runs_limit),
        (RunState.FAILED, limits.failed_runs_limit),
    ):
        runs = [r for r in track.runs if r.state == state]
        out.runs += _beyond(runs, limit, protected_runs, "TrainingRun", out.kept)
    ages = {run.name: _age(run) for run in track.runs}
    out.runs.sort(key=ages.__getitem__)
    return out


def _protected_models(track: Track) -> dict[str, str]:
    why: dict[str, str] = {}
    for experiment_ in track.experiments:
        if not experiment_.finished:
            for model in sorted(experiment_.models):
                why.setdefault(model, f"named by Experiment {experiment_.name}, which is not settled")
    newest = list(dict.fromkeys(track.lineage))[:LINEAGE_KEPT]
    for model in newest:
        why.setdefault(model, "a champion in status.lineage, kept as a rollback target")
    if track.champion:
        why[track.champion] = "the champion"
    return why


def _protected_runs(track: Track, protected_models: Mapping[str, str], deleted: set[str]) -> dict[str, str]:
    why: dict[str, str] = {}
    runs_by_uid = {run.uid: run.name for run in track.runs if run.uid}
    for model in track.models:
        if model.name in protected_models and model.training_run:
            why.setdefault(
                model.training_run, f"trained ShadowModel {model.name} ({protected_models[model.name]})"
            )
        if model.name not in deleted:
            for uid in sorted(model.owners & runs_by_uid.keys()):
                why.setdefault(runs_by_uid[uid], f"owns ShadowModel {model.name}, which stays")
    for run in track.runs:
        if track.train_now and run.trigger_token == track.train_now:
            # The policy still carries the value that started this run: deleted, the value would
            # look unused and start one more run.
            why.setdefault(run.name, f"started by the policy's {TRAIN_NOW} value, which it still carries")
        if run.training_run in protected_models:
            why.setdefault(
                run.name, f"trained ShadowModel {run.training_run} ({protected_models[run.training_run]})"
            )
    return why


def _beyond(
    objects: Iterable[Seen], limit: int, protected: Mapping[str, str], kind: str, kept: dict[str, str]
) -> list[str]:
    """The objects older than the newest ``limit`` that nothing protects, oldest first."""
    newest_first = sorted(objects, key=_age, reverse=True)
    chosen = []
    for seen in newest_first[limit:]:
        reason = "a person's request waits on it" if seen.waiting else protected.get(seen.name)
        if reason:
            kept[f"{kind}/{seen.name}"] = reason
        else:
            chosen.append(seen.name)
    return chosen[::-1]


def _age(seen: Seen) -> tuple[datetime, str]:
    return (seen.created, seen.name)


def summary(deleted: Mapping[str, int]) -> str:
    """The Event's sentence, e.g. ``deleted 3 TrainingRuns, 2 Experiments beyond the history limits``."""
    parts = [f"{count} {kind}{'' if count == 1 else 's'}" for kind, count in deleted.items() if count]
    return f"deleted {', '.join(parts)} beyond the history limits (spec.history)"


# Reading the API server's objects (plain dicts) into what the choice needs.


def _created(raw: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(raw["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def _waiting(raw: Mapping[str, Any]) -> bool:
    meta = raw["metadata"]
    if meta.get("deletionTimestamp"):
        return True
    request, unreadable = intervention.requested(meta)
    if unreadable:
        return True  # a request the operator cannot read still names this object: a person is at it
    recorded = {item.get("id") for item in (raw.get("status") or {}).get("interventions") or []}
    return request is not None and request.id not in recorded


def run_of(raw: Mapping[str, Any]) -> Seen:
    status = raw.get("status") or {}
    succeeded = any(
        c.get("type") == "Succeeded" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    state = (
        RunState.RUNNING
        if not status.get("completionTime")
        else RunState.SUCCEEDED
        if succeeded
        else RunState.FAILED
    )
    meta = raw["metadata"]
    return Seen(
        meta["name"],
        meta.get("uid", ""),
        _created(raw),
        _waiting(raw),
        state,
        status.get("shadowModel") or "",
        trigger_token=(meta.get("annotations") or {}).get(TRIGGER_TOKEN) or "",
    )


def model_of(raw: Mapping[str, Any]) -> Seen:
    status = raw.get("status") or {}
    finished = status.get("role") in RETIRED_ROLES and shadowmodel.at_rest(dict(raw))
    meta = raw["metadata"]
    owners = frozenset(ref.get("uid", "") for ref in meta.get("ownerReferences") or [])
    return Seen(
        meta["name"], meta.get("uid", ""), _created(raw), _waiting(raw), "finished" if finished else "",
        (raw.get("spec") or {}).get("trainingRunRef") or "", owners,
    )  # fmt: skip


def experiment_of(raw: Mapping[str, Any], ours: bool) -> Seen:
    variants = (raw.get("spec") or {}).get("variants") or []
    models = frozenset(v["shadowModel"] for v in variants if v.get("shadowModel"))
    challengers = frozenset(
        v["shadowModel"]
        for v in variants
        if v.get("shadowModel") and v.get("role") != VariantRole.CHAMPION.value
    )
    promoted = (raw.get("status") or {}).get("decision") == experiment.Decision.PROMOTE.value
    meta = raw["metadata"]
    return Seen(
        meta["name"], meta.get("uid", ""), _created(raw), _waiting(raw),
        "finished" if experiment.at_rest(dict(raw)) else "",
        models=models, challengers=challengers, promoted=promoted, ours=ours,
    )  # fmt: skip
